// FedAvg against hand-computed examples (expected values in comments).
#include <cmath>
#include <memory>
#include <string>
#include <vector>

#include "algorithms/rules.h"
#include "gmock/gmock.h"
#include "google/protobuf/text_format.h"
#include "gtest/gtest.h"
#include "tests/fake_fleet.h"
#include "tests/rule_test_util.h"

namespace fedsim {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;

std::unique_ptr<Algorithm> Make(const std::string& text) { return MakeRule(&NewFedAvg, text); }

// Selects a round (select stream of seed 1) and starts its tasks: each
// client's task id, indexed by client.
std::vector<TaskId> StartRound(Algorithm& algo, FakeFleet& fleet) {
  Rng rng(1, "select");
  std::vector<TaskId> task(fleet.num_clients());
  for (const Dispatch& x : MustSelect(algo, fleet, rng)) task[x.client] = fleet.StartTask(x.client);
  return task;
}

TEST(FedAvgTest, ExamplesWeightedRound) {
  auto algo = Make("fedavg { clients_per_round: 3 }");
  FakeFleet fleet(3, {0, 0});
  fleet.mutable_client(0).num_examples = 1;
  fleet.mutable_client(1).num_examples = 2;
  fleet.mutable_client(2).num_examples = 3;
  Rng rng(1, "select");
  std::vector<Dispatch> d = MustSelect(*algo, fleet, rng);
  ASSERT_EQ(d.size(), 3u);
  std::vector<TaskId> task(3);
  for (const Dispatch& x : d) task[x.client] = fleet.StartTask(x.client);
  EXPECT_THAT(MustSelect(*algo, fleet, rng), IsEmpty());  // round in progress
  EXPECT_FALSE(algo->ReadyToCommit(fleet));
  EXPECT_EQ(algo->NextDeadline(), std::nullopt);

  fleet.set_now(1);
  ASSERT_TRUE(algo->Accept(fleet, fleet.FinishTask(task[2], {3, 3})).ok());
  fleet.set_now(2);
  ASSERT_TRUE(algo->Accept(fleet, fleet.FinishTask(task[0], {6, 0})).ok());
  EXPECT_FALSE(algo->ReadyToCommit(fleet));
  fleet.set_now(3);
  ASSERT_TRUE(algo->Accept(fleet, fleet.FinishTask(task[1], {0, 6})).ok());
  ASSERT_TRUE(algo->ReadyToCommit(fleet));
  absl::StatusOr<CommitResult> r = fleet.CommitTo(*algo);
  ASSERT_TRUE(r.ok()) << r.status();
  // (3*{3,3} + 1*{6,0} + 2*{0,6}) / 6 = {15, 21} / 6 = {2.5, 3.5}
  EXPECT_THAT(fleet.current(), ElementsAre(2.5f, 3.5f));
  ASSERT_EQ(r->applied.size(), 3u);  // arrival order
  EXPECT_EQ(r->applied[0].client, 2u);
  EXPECT_DOUBLE_EQ(r->applied[0].weight, 3.0 / 6);
  EXPECT_DOUBLE_EQ(r->applied[1].weight, 1.0 / 6);
  EXPECT_DOUBLE_EQ(r->applied[2].weight, 2.0 / 6);
  EXPECT_FALSE(algo->ReadyToCommit(fleet));
}

// The round's sum is exact (core/exact_sum.h): updates arriving in another
// order give the same model, bit for bit, and that model is the weighted
// mean to float precision.
TEST(FedAvgTest, ArrivalOrderDoesNotChangeABit) {
  const size_t n = 64;
  const std::vector<uint64_t> examples = {7, 60, 13, 600, 1};
  std::vector<std::vector<float>> deltas(examples.size(), std::vector<float>(n));
  for (size_t i = 0; i < deltas.size(); ++i) {
    for (size_t j = 0; j < n; ++j) {
      deltas[i][j] = 0.1f / static_cast<float>(3 + i + 7 * j) - 0.013f * static_cast<float>(i);
    }
  }
  auto run = [&](const std::vector<size_t>& order) {
    auto algo = MakeRule(&NewFedAvg, "fedavg { clients_per_round: 5 }", {.num_params = n});
    FakeFleet fleet(5, std::vector<float>(n, 0.0f));
    for (size_t i = 0; i < examples.size(); ++i) fleet.mutable_client(i).num_examples = examples[i];
    EXPECT_TRUE(algo->Start(fleet, fleet).ok());
    std::vector<TaskId> task = StartRound(*algo, fleet);
    for (size_t i : order)
      EXPECT_TRUE(algo->Accept(fleet, fleet.FinishTask(task[i], deltas[i])).ok());
    EXPECT_TRUE(fleet.CommitTo(*algo).ok());
    return fleet.current();
  };
  const std::vector<float> forward = run({0, 1, 2, 3, 4});
  EXPECT_EQ(run({4, 2, 0, 3, 1}), forward);
  EXPECT_EQ(run({3, 4, 1, 0, 2}), forward);
  double total = 0;
  for (uint64_t e : examples) total += static_cast<double>(e);
  for (size_t j = 0; j < n; ++j) {
    double want = 0;
    for (size_t i = 0; i < examples.size(); ++i) want += examples[i] * double{deltas[i][j]};
    EXPECT_NEAR(forward[j], want / total, 1e-7) << j;
  }
}

TEST(FedAvgTest, AnUpdateTooLargeForTheSumIsRefusedAndTheRoundGoesOn) {
  auto algo = Make("fedavg { clients_per_round: 2 weighting: UNIFORM }");
  FakeFleet fleet(2, {0, 0});
  std::vector<TaskId> task = StartRound(*algo, fleet);
  absl::Status s = algo->Accept(fleet, fleet.FinishTask(task[0], {1e6f, 0}));
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(s.message(), HasSubstr("below 524288"));
  ASSERT_TRUE(algo->Accept(fleet, fleet.FinishTask(task[1], {2, 4})).ok());
  ASSERT_TRUE(algo->ReadyToCommit(fleet));
  absl::StatusOr<CommitResult> r = fleet.CommitTo(*algo);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_THAT(fleet.current(), ElementsAre(2.0f, 4.0f));  // the refused one is not in it
  ASSERT_EQ(r->applied.size(), 1u);
}

TEST(FedAvgTest, NonFiniteUpdatesAreRefusedByTheSumsPass) {
  auto algo = Make("fedavg { clients_per_round: 3 weighting: UNIFORM }");
  FakeFleet fleet(3, {0, 0});
  std::vector<TaskId> task = StartRound(*algo, fleet);
  absl::Status nan = algo->Accept(fleet, fleet.FinishTask(task[0], {0, std::nanf("")}));
  EXPECT_EQ(nan.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(nan.message(), HasSubstr("value 1 is nan"));
  absl::Status inf = algo->Accept(fleet, fleet.FinishTask(task[1], {-INFINITY, 0}));
  EXPECT_EQ(inf.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(inf.message(), HasSubstr("value 0 is -inf"));
  EXPECT_EQ(algo->Accept(fleet, fleet.FinishTask(task[2], {1, 2, 3})).code(),
            absl::StatusCode::kInvalidArgument);  // wrong size
  ASSERT_TRUE(algo->ReadyToCommit(fleet));        // nobody left to wait for
  absl::StatusOr<CommitResult> r = fleet.CommitTo(*algo);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_THAT(r->applied, IsEmpty());
  EXPECT_THAT(fleet.current(), ElementsAre(0.0f, 0.0f));
}

TEST(FedAvgTest, UniformWithServerLr) {
  auto algo = Make("fedavg { clients_per_round: 3 weighting: UNIFORM server_lr: 0.5 }");
  FakeFleet fleet(3, {0, 0});
  fleet.mutable_client(2).num_examples = 100;  // ignored by UNIFORM
  std::vector<TaskId> task = StartRound(*algo, fleet);
  ASSERT_TRUE(algo->Accept(fleet, fleet.FinishTask(task[0], {6, 0})).ok());
  ASSERT_TRUE(algo->Accept(fleet, fleet.FinishTask(task[1], {0, 6})).ok());
  ASSERT_TRUE(algo->Accept(fleet, fleet.FinishTask(task[2], {3, 3})).ok());
  ASSERT_TRUE(fleet.CommitTo(*algo).ok());
  // 0.5 * {9, 9} / 3 = {1.5, 1.5}
  EXPECT_THAT(fleet.current(), ElementsAre(1.5f, 1.5f));
}

TEST(FedAvgTest, DeadlineDropsLateUpdate) {
  auto algo = Make("fedavg { clients_per_round: 3 weighting: UNIFORM deadline_s: 10 }");
  FakeFleet fleet(3, {0, 0});
  Rng rng(1, "select");
  std::vector<TaskId> task(3);
  for (const Dispatch& x : MustSelect(*algo, fleet, rng))
    task[x.client] = fleet.StartTask(x.client);
  EXPECT_EQ(algo->NextDeadline(), 10.0);

  fleet.set_now(4);
  ASSERT_TRUE(algo->Accept(fleet, fleet.FinishTask(task[0], {3, 0})).ok());
  EXPECT_FALSE(algo->ReadyToCommit(fleet));
  // Exactly at the deadline, processed before the timer: counts.
  fleet.set_now(10);
  ASSERT_TRUE(algo->Accept(fleet, fleet.FinishTask(task[1], {0, 3})).ok());
  // Other arrivals at t=10 may follow: not ready until the timer fires.
  EXPECT_FALSE(algo->ReadyToCommit(fleet));
  EXPECT_THAT(MustSelect(*algo, fleet, rng), IsEmpty());  // ends the arrival event
  EXPECT_FALSE(algo->ReadyToCommit(fleet));
  // The timer event at t=10.
  ASSERT_TRUE(fleet.FireTimer(*algo, 10).ok());
  ASSERT_TRUE(algo->ReadyToCommit(fleet));  // deadline reached, client 2 missing
  absl::StatusOr<CommitResult> r = fleet.CommitTo(*algo);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->applied.size(), 2u);
  // ({3,0} + {0,3}) / 2 = {1.5, 1.5}
  EXPECT_THAT(fleet.current(), ElementsAre(1.5f, 1.5f));
  EXPECT_EQ(algo->NextDeadline(), std::nullopt);  // advanced by Commit

  // Next round at t=10 with the 2 idle clients (fewer than m = 3).
  std::vector<Dispatch> d = MustSelect(*algo, fleet, rng);
  EXPECT_EQ(d.size(), 2u);
  for (const Dispatch& x : d) task[x.client] = fleet.StartTask(x.client);
  EXPECT_EQ(algo->NextDeadline(), 20.0);
  // Client 2's round-1 update arrives at 12: late for its round.
  fleet.set_now(12);
  absl::Status late = algo->Accept(fleet, fleet.FinishTask(task[2], {100, 100}));
  EXPECT_EQ(late.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(late.message(), HasSubstr("late for round"));
  EXPECT_FALSE(algo->ReadyToCommit(fleet));
  EXPECT_THAT(MustSelect(*algo, fleet, rng), IsEmpty());  // round 2 in progress
}

TEST(FedAvgTest, ArrivalAfterDeadlineRefusedWithinItsRound) {
  // Engine missed the timer (or wall clock): the arrival time decides.
  auto algo = Make("fedavg { clients_per_round: 2 deadline_s: 5 }");
  FakeFleet fleet(2, {0, 0});
  std::vector<TaskId> task = StartRound(*algo, fleet);
  fleet.set_now(1);
  ASSERT_TRUE(algo->Accept(fleet, fleet.FinishTask(task[0], {2, 2})).ok());
  fleet.set_now(6);
  EXPECT_EQ(algo->Accept(fleet, fleet.FinishTask(task[1], {9, 9})).code(),
            absl::StatusCode::kFailedPrecondition);
  ASSERT_TRUE(fleet.CommitTo(*algo).ok());
  EXPECT_THAT(fleet.current(), ElementsAre(2, 2));
}

TEST(FedAvgTest, OverSelectionKeepsFirstArrivals) {
  auto algo = Make("fedavg { clients_per_round: 2 over_select: 3 }");
  FakeFleet fleet(4, {0, 0});
  Rng rng(7, "select");
  std::vector<Dispatch> d = MustSelect(*algo, fleet, rng);
  ASSERT_EQ(d.size(), 3u);
  std::vector<TaskId> tasks = fleet.StartTasks(d);
  fleet.set_now(1);
  ASSERT_TRUE(algo->Accept(fleet, fleet.FinishTask(tasks[1], {2, 0})).ok());
  EXPECT_FALSE(algo->ReadyToCommit(fleet));
  fleet.set_now(2);
  ASSERT_TRUE(algo->Accept(fleet, fleet.FinishTask(tasks[0], {0, 4})).ok());
  ASSERT_TRUE(algo->ReadyToCommit(fleet));  // m = 2 in, the third not awaited
  ASSERT_TRUE(fleet.CommitTo(*algo).ok());
  // n_i = 1 each: ({2,0} + {0,4}) / 2 = {1, 2}
  EXPECT_THAT(fleet.current(), ElementsAre(1, 2));
  // The straggler is refused; the next round has the 3 idle clients.
  fleet.set_now(3);
  std::vector<Dispatch> next = MustSelect(*algo, fleet, rng);
  EXPECT_EQ(next.size(), 3u);
  fleet.StartTasks(next);
  EXPECT_EQ(algo->Accept(fleet, fleet.FinishTask(tasks[2], {50, 50})).code(),
            absl::StatusCode::kFailedPrecondition);
}

TEST(FedAvgTest, LostTaskStopsTheWait) {
  auto algo = Make("fedavg { clients_per_round: 2 }");
  FakeFleet fleet(2, {0, 0});
  std::vector<TaskId> task = StartRound(*algo, fleet);
  algo->OnTaskLost(fleet, task[1], 1);
  fleet.LoseTask(task[1]);
  EXPECT_FALSE(algo->ReadyToCommit(fleet));
  ASSERT_TRUE(algo->Accept(fleet, fleet.FinishTask(task[0], {1, -1})).ok());
  ASSERT_TRUE(algo->ReadyToCommit(fleet));
  ASSERT_TRUE(fleet.CommitTo(*algo).ok());
  EXPECT_THAT(fleet.current(), ElementsAre(1, -1));
}

TEST(FedAvgTest, ZeroArrivalsLeaveModelUnchanged) {
  auto algo = Make("fedavg { clients_per_round: 2 deadline_s: 3 }");
  FakeFleet fleet(2, {5, 6});
  Rng rng(1, "select");
  fleet.StartTasks(MustSelect(*algo, fleet, rng));
  EXPECT_EQ(algo->NextDeadline(), 3.0);
  ASSERT_TRUE(fleet.FireTimer(*algo, 3).ok());
  ASSERT_TRUE(algo->ReadyToCommit(fleet));
  absl::StatusOr<CommitResult> r = fleet.CommitTo(*algo);
  ASSERT_TRUE(r.ok());
  EXPECT_THAT(r->applied, IsEmpty());
  EXPECT_THAT(fleet.current(), ElementsAre(5, 6));
  EXPECT_EQ(fleet.version(), 1u);
  EXPECT_FALSE(algo->ReadyToCommit(fleet));
}

TEST(FedAvgTest, NoIdleClientsNoRound) {
  auto algo = Make("fedavg { clients_per_round: 2 }");
  FakeFleet fleet(3, {0, 0});
  fleet.mutable_client(0).available = false;
  fleet.mutable_client(1).available = false;
  fleet.mutable_client(2).busy = true;
  Rng rng(1, "select");
  EXPECT_THAT(MustSelect(*algo, fleet, rng), IsEmpty());
  EXPECT_FALSE(algo->ReadyToCommit(fleet));
  fleet.mutable_client(1).available = true;
  EXPECT_THAT(DispatchedClients(MustSelect(*algo, fleet, rng)), ElementsAre(1u));  // a round of one
}

TEST(FedAvgTest, RejectsBadParameters) {
  config::Algorithm c;
  c.mutable_fedavg()->set_over_select(3);
  c.mutable_fedavg()->set_clients_per_round(5);
  absl::StatusOr<std::unique_ptr<Algorithm>> a = NewFedAvg(c, {});
  EXPECT_EQ(a.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(a.status().message(), HasSubstr("fedavg.over_select"));
  c.mutable_fedavg()->set_over_select(0);
  c.mutable_fedavg()->set_deadline_s(-1);
  EXPECT_THAT(NewFedAvg(c, {}).status().message(), HasSubstr("fedavg.deadline_s"));
}

}  // namespace
}  // namespace fedsim
