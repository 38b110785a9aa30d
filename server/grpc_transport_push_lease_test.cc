// A push that asks for tasks gets them leased with its answer
// (PushUpdateResponse.tasks), as GetTask would lease them.
#include <memory>
#include <vector>

#include "gtest/gtest.h"
#include "server/transport_test_fixture.h"

namespace fedsim {
namespace testing_internal {
namespace {

TEST_F(TransportTest, APushThatAsksForTasksGetsThemLeasedWithTheAnswer) {
  const size_t n = 100;
  Start(n);
  auto client = NewClient();
  WorkerSession w = RegisterWorker(*client);  // 2 slots
  for (TaskId id : {1, 2, 3, 4, 5}) transport_->Submit(MakeTask(id));
  auto lease = client->GetTask(w, 1, 1.0);
  ASSERT_TRUE(lease.ok()) << lease.status();
  ASSERT_EQ(lease->tasks_size(), 1);
  EXPECT_EQ(lease->tasks(0).task_id(), 1u);

  // One asked, one leased, in queue order.
  auto pushed = client->PushUpdateAndLease(w, MakeResult(MakeTask(1), n), 1);
  ASSERT_TRUE(pushed.ok()) << pushed.status();
  EXPECT_FALSE(pushed->duplicate);
  ASSERT_EQ(pushed->tasks.size(), 1u);
  EXPECT_EQ(pushed->tasks[0].task_id(), 2u);
  ASSERT_TRUE(transport_->Await(1).ok());

  // The lease is a real one: its result is taken. More than the worker's
  // slots are never leased at once.
  pushed = client->PushUpdateAndLease(w, MakeResult(MakeTask(2), n), 9);
  ASSERT_TRUE(pushed.ok()) << pushed.status();
  ASSERT_EQ(pushed->tasks.size(), 2u);
  EXPECT_EQ(pushed->tasks[0].task_id(), 3u);
  EXPECT_EQ(pushed->tasks[1].task_id(), 4u);
  ASSERT_TRUE(transport_->Await(2).ok());

  // A push that does not ask gets none; one that asks when nothing is
  // pending gets none either.
  pushed = client->PushUpdateAndLease(w, MakeResult(MakeTask(3), n), 0);
  ASSERT_TRUE(pushed.ok()) << pushed.status();
  EXPECT_TRUE(pushed->tasks.empty());
  ASSERT_TRUE(client->GetTask(w, 1, 1.0).ok());  // task 5
  pushed = client->PushUpdateAndLease(w, MakeResult(MakeTask(4), n), 1);
  ASSERT_TRUE(pushed.ok()) << pushed.status();
  EXPECT_TRUE(pushed->tasks.empty());

  // A refused push leases nothing.
  transport_->Submit(MakeTask(6));
  TaskResult wrong = MakeResult(MakeTask(5), n);
  wrong.delta.resize(n - 1);
  auto refused = client->PushUpdateAndLease(w, wrong, 1);
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kInvalidArgument);
  auto still = client->GetTask(w, 1, 1.0);
  ASSERT_TRUE(still.ok()) << still.status();
  ASSERT_EQ(still->tasks_size(), 1);
  EXPECT_EQ(still->tasks(0).task_id(), 6u);

  GrpcTransportStats stats = transport_->stats();
  EXPECT_EQ(stats.updates_accepted, 4u);
}

TEST_F(TransportTest, ASharedResultStreamsIntactAcrossChunks) {
  const size_t n = 700'000;  // 2.8 MB: three chunks, each pointing into the result
  Start(n);
  auto client = NewClient();
  WorkerSession w = RegisterWorker(*client);
  transport_->Submit(MakeTask(1));
  ASSERT_EQ(client->GetTask(w, 1, 1.0)->tasks_size(), 1);
  auto result = std::make_shared<TaskResult>(MakeResult(MakeTask(1), n));
  for (size_t i = 0; i < n; ++i) result->delta[i] = static_cast<float>(i) * 1e-6f;
  const std::vector<float> sent = result->delta;
  auto pushed =
      client->PushUpdateAndLease(w, std::shared_ptr<const TaskResult>(std::move(result)), 0);
  ASSERT_TRUE(pushed.ok()) << pushed.status();
  auto arrived = transport_->Await(1);
  ASSERT_TRUE(arrived.ok()) << arrived.status();
  EXPECT_EQ(arrived->delta, sent);
  EXPECT_EQ(transport_->stats().bytes_received, n * sizeof(float));
}

TEST_F(TransportTest, AfterShutdownAPushBringsNoTask) {
  const size_t n = 10;
  Start(n);
  auto client = NewClient();
  WorkerSession w = RegisterWorker(*client);
  transport_->Submit(MakeTask(1));
  transport_->Submit(MakeTask(2));
  ASSERT_EQ(client->GetTask(w, 1, 1.0)->tasks_size(), 1);
  transport_->Shutdown();
  auto pushed = client->PushUpdateAndLease(w, MakeResult(MakeTask(1), n), 1);
  ASSERT_TRUE(pushed.ok()) << pushed.status();
  EXPECT_TRUE(pushed->tasks.empty());
}

}  // namespace
}  // namespace testing_internal
}  // namespace fedsim
