// The clients of a deployment whose clients bring their own data: clients
// admitted by name, who is connected, the slowest lease, and waiting for a
// result with a deadline.
#include <optional>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "server/transport_test_fixture.h"

namespace fedsim {
namespace testing_internal {
namespace {

using ::testing::HasSubstr;

WorkerIdentity DataWorker(std::vector<std::string> names, std::vector<uint64_t> train,
                          std::vector<uint64_t> test) {
  WorkerIdentity id{.name = "w", .slots = 2, .numeric_fingerprints = {}, .local_clients = names};
  id.local_train_examples = std::move(train);
  id.local_test_examples = std::move(test);
  return id;
}

TEST_F(TransportTest, AdmitsNamesInRegistrationOrderUpToTheRunsClients) {
  GrpcServerOptions options;
  options.admit_clients = 3;
  Start(10, options);
  std::optional<std::vector<bool>> connected = transport_->ConnectedClients();
  ASSERT_TRUE(connected.has_value()) << "an admitting server tracks its clients";
  EXPECT_TRUE(connected->empty());

  auto c1 = NewClient();
  absl::StatusOr<wire::RegisterResponse> r1 = c1->Register(DataWorker({"x", "y"}, {5, 7}, {1, 2}));
  ASSERT_TRUE(r1.ok()) << r1.status();
  ASSERT_EQ(r1->client_slots_size(), 2);
  EXPECT_EQ(r1->client_slots(0), 0u);
  EXPECT_EQ(r1->client_slots(1), 1u);
  EXPECT_EQ(r1->client_train_examples(1), 7u);  // n_i as the worker reported it
  FleetStatus fleet = transport_->fleet();
  EXPECT_EQ(fleet.clients_total, 3u);
  EXPECT_EQ(fleet.clients_connected, 2u);

  // Not all admitted: the start waits, and says how many are still to come.
  absl::Status early = transport_->AwaitClients(3, clock_.Now());
  EXPECT_EQ(early.code(), absl::StatusCode::kDeadlineExceeded);
  EXPECT_THAT(early.message(), HasSubstr("1 not admitted yet"));

  // A worker of an older build, without counts, cannot be admitted.
  auto c2 = NewClient();
  absl::StatusOr<wire::RegisterResponse> bad = c2->Register(
      WorkerIdentity{.name = "old", .numeric_fingerprints = {}, .local_clients = {"z"}});
  EXPECT_EQ(bad.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(bad.status().message(), HasSubstr("does not say how many examples"));

  absl::StatusOr<wire::RegisterResponse> r2 = c2->Register(DataWorker({"z"}, {9}, {0}));
  ASSERT_TRUE(r2.ok()) << r2.status();
  EXPECT_EQ(r2->client_slots(0), 2u);
  EXPECT_TRUE(transport_->AwaitClients(3, clock_.Now()).ok());
  const std::vector<LocalClient> admitted = transport_->LocalClients();
  ASSERT_EQ(admitted.size(), 3u);
  EXPECT_EQ(admitted[0].name, "x");
  EXPECT_EQ(admitted[1].train_examples, 7u);
  EXPECT_EQ(admitted[1].test_examples, 2u);
  EXPECT_EQ(admitted[2].name, "z");

  // Full: a new name is refused; a known one comes back only with its data.
  auto c3 = NewClient();
  bad = c3->Register(DataWorker({"w"}, {1}, {0}));
  EXPECT_EQ(bad.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(bad.status().message(), HasSubstr("admits 3 clients and has them all (x, y, z)"));
  bad = c3->Register(DataWorker({"y"}, {8}, {2}));
  EXPECT_EQ(bad.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(bad.status().message(), HasSubstr("admitted with 7"));
  absl::StatusOr<wire::RegisterResponse> back = c3->Register(DataWorker({"y"}, {7}, {2}));
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_EQ(back->client_slots(0), 1u);  // a restarted client keeps its slot
}

TEST_F(TransportTest, ConnectedClientsFollowTheWorkersThatHoldThem) {
  GrpcServerOptions options;
  options.local_client_names = {"a", "b"};
  options.heartbeat_timeout_s = 5;
  Start(10, options);
  EXPECT_EQ(transport_->ConnectedClients(), (std::vector<bool>{false, false}));
  auto c1 = NewClient();
  ASSERT_TRUE(c1->Register(DataWorker({"b"}, {60}, {0})).ok());
  EXPECT_EQ(transport_->ConnectedClients(), (std::vector<bool>{false, true}));
  // Silent past the heartbeat timeout: dropped, its client away again.
  WaitForTimedWaiters(0);
  clock_.Advance(absl::Seconds(6));
  for (int i = 0; i < 2000 && transport_->ConnectedClients() != std::vector<bool>{false, false};
       ++i) {
    absl::SleepFor(absl::Milliseconds(1));
  }
  EXPECT_EQ(transport_->ConnectedClients(), (std::vector<bool>{false, false}));
}

TEST_F(TransportTest, FleetNamesTheLeaseHeldLongest) {
  GrpcServerOptions options;
  options.local_client_names = {"a", "b"};
  Start(10, options);
  auto c1 = NewClient();
  absl::StatusOr<wire::RegisterResponse> r = c1->Register(DataWorker({"a", "b"}, {60, 60}, {0, 0}));
  ASSERT_TRUE(r.ok()) << r.status();
  const WorkerSession w = WorkerSession::Of(*r);
  EXPECT_TRUE(transport_->fleet().slowest_client.empty());
  transport_->Submit(MakeTask(1, /*client=*/1));
  ASSERT_EQ(c1->GetTask(w, 1, 0)->tasks_size(), 1);
  clock_.Advance(absl::Seconds(2));
  transport_->Submit(MakeTask(2, /*client=*/0));
  ASSERT_EQ(c1->GetTask(w, 1, 0)->tasks_size(), 1);
  const FleetStatus fleet = transport_->fleet();
  EXPECT_EQ(fleet.tasks_in_flight, 2u);
  EXPECT_EQ(fleet.slowest_client, "b");
  EXPECT_DOUBLE_EQ(fleet.slowest_s, 2.0);
  absl::StatusOr<wire::RunStatusResponse> status = c1->RunStatus();
  ASSERT_TRUE(status.ok()) << status.status();
  EXPECT_EQ(status->slowest_client(), "b");
}

TEST_F(TransportTest, AwaitUntilGivesUpAtItsDeadlineAndTheResultStillComes) {
  Start(10);
  EXPECT_EQ(transport_->ConnectedClients(), std::nullopt);  // a simulation
  auto c1 = NewClient();
  const WorkerSession w = RegisterWorker(*c1);
  const TaskSpec task = MakeTask(1);
  transport_->Submit(task);
  absl::StatusOr<std::optional<TaskResult>> none = transport_->AwaitUntil(1, clock_.Now());
  ASSERT_TRUE(none.ok()) << none.status();
  EXPECT_FALSE(none->has_value());
  ASSERT_EQ(c1->GetTask(w, 1, 0)->tasks_size(), 1);
  ASSERT_TRUE(c1->PushUpdate(w, MakeResult(task, 10)).ok());
  absl::StatusOr<std::optional<TaskResult>> got = transport_->AwaitUntil(1, clock_.Now());
  ASSERT_TRUE(got.ok()) << got.status();
  ASSERT_TRUE(got->has_value());
  EXPECT_EQ((*got)->id, 1u);
}

}  // namespace
}  // namespace testing_internal
}  // namespace fedsim
