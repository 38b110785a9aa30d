// Time and faults on a FakeClock: long polls, heartbeat timeouts, re-queued
// tasks, Await deadlines. Every timing is exact: the tests move the clock.
#include <optional>
#include <string>
#include <thread>

#include "absl/synchronization/notification.h"
#include "core/clock.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "rpc/aggregator_client.h"
#include "server/grpc_transport.h"
#include "server/transport_test_fixture.h"

namespace fedsim {
namespace {

using ::testing::HasSubstr;
using testing_internal::kBase;
using testing_internal::MakeResult;
using testing_internal::MakeTask;
using testing_internal::TransportTest;

// A poll the worker gives up is finished at once, not left parked: its
// task goes to the next poll, not to a worker that is no longer listening.
TEST_F(TransportTest, ACancelledLongPollLeavesNothingParkedAndTakesNoTask) {
  Start(10);
  auto client = NewClient();
  WorkerSession w = RegisterWorker(*client);
  std::unique_ptr<wire::Aggregator::Stub> stub =
      wire::Aggregator::NewStub(NewWireChannel(transport_->address()));
  wire::GetTaskRequest request;
  request.set_worker_id(w.worker_id);
  request.set_session(w.session);
  request.set_max_tasks(1);
  request.set_wait_s(5.0);
  grpc::ClientContext context;
  wire::GetTaskResponse response;
  absl::Notification done;
  grpc::Status status;
  stub->async()->GetTask(&context, &request, &response, [&](grpc::Status s) {
    status = s;
    done.Notify();
  });
  WaitForTimedWaiters(1);  // parked: the poll timer watches its deadline
  EXPECT_EQ(transport_->stats().polls_parked, 1u);
  context.TryCancel();
  done.WaitForNotification();
  EXPECT_EQ(status.error_code(), grpc::StatusCode::CANCELLED);
  // The server hears of it on gRPC's time, not the fake clock's.
  EXPECT_TRUE(AwaitPollsParked(0, absl::Seconds(3)));

  transport_->Submit(MakeTask(1));
  auto lease = client->GetTask(w, 1, 5.0);
  ASSERT_TRUE(lease.ok()) << lease.status();
  ASSERT_EQ(lease->tasks_size(), 1);
  EXPECT_EQ(lease->tasks(0).task_id(), 1u);
}

TEST_F(TransportTest, LongPollWakesWhenATaskIsSubmitted) {
  Start(10);
  auto client = NewClient();
  WorkerSession w = RegisterWorker(*client);
  const absl::Time t0 = clock_.Now();
  absl::StatusOr<wire::GetTaskResponse> lease;
  std::thread poller([&] { lease = client->GetTask(w, 1, 5.0); });
  WaitForTimedWaiters(1);  // the poll is waiting
  transport_->Submit(MakeTask(1));
  poller.join();
  ASSERT_TRUE(lease.ok());
  EXPECT_EQ(lease->tasks_size(), 1);
  EXPECT_EQ(clock_.Now(), t0);  // woken by the task, not by its wait running out

  // An empty poll returns after exactly its wait, with no tasks.
  absl::StatusOr<wire::GetTaskResponse> empty;
  std::thread empty_poller([&] { empty = client->GetTask(w, 1, 0.05); });
  WaitForTimedWaiters(1);
  clock_.Advance(absl::Milliseconds(49));
  WaitForTimedWaiters(1);  // still waiting at 49 ms
  clock_.Advance(absl::Milliseconds(1));
  empty_poller.join();
  ASSERT_TRUE(empty.ok());
  EXPECT_EQ(empty->tasks_size(), 0);
  EXPECT_FALSE(empty->run_finished());
}

// A worker that leased a task and went silent: once it has been silent for
// the heartbeat timeout (0.4 s) while the other worker heartbeats every
// 50 ms, the task goes to the front of the queue and the second worker's
// long poll gets it; the engine's Await gets the result.
TEST_F(TransportTest, SilentWorkersTasksAreReleasedToAnotherWorker) {
  GrpcServerOptions options;
  options.heartbeat_interval_s = 0.05;
  options.heartbeat_timeout_s = 0.4;
  const size_t n = 100;
  Start(n, options);
  auto client = NewClient();
  WorkerSession silent = RegisterWorker(*client);
  WorkerSession alive = RegisterWorker(*client);
  transport_->Submit(MakeTask(1));
  transport_->Submit(MakeTask(2));
  auto lease = client->GetTask(silent, 1, 0);
  ASSERT_TRUE(lease.ok());
  ASSERT_EQ(lease->tasks_size(), 1);
  ASSERT_EQ(lease->tasks(0).task_id(), 1u);
  // The live worker takes task 2, then waits; task 1 comes back to it.
  auto second = client->GetTask(alive, 1, 0);
  ASSERT_TRUE(second.ok());
  ASSERT_EQ(second->tasks_size(), 1);
  EXPECT_EQ(second->tasks(0).task_id(), 2u);
  absl::StatusOr<wire::GetTaskResponse> released;
  std::thread poller([&] { released = client->GetTask(alive, 1, 5.0); });
  WaitForTimedWaiters(1);
  for (int beat = 1; beat <= 7; ++beat) {  // up to 0.35 s: nobody has expired
    clock_.Advance(absl::Milliseconds(50));
    ASSERT_TRUE(client->Heartbeat(alive, {2}).ok());
  }
  EXPECT_EQ(transport_->stats().workers_dropped, 0u);
  EXPECT_EQ(transport_->stats().tasks_requeued, 0u);
  clock_.Advance(absl::Milliseconds(50));  // 0.4 s of silence
  ASSERT_TRUE(client->Heartbeat(alive, {2}).ok());
  poller.join();
  ASSERT_TRUE(released.ok()) << released.status();
  ASSERT_EQ(released->tasks_size(), 1);
  EXPECT_EQ(released->tasks(0).task_id(), 1u);
  EXPECT_EQ(transport_->stats().tasks_requeued, 1u);
  EXPECT_EQ(transport_->stats().workers_dropped, 1u);

  auto hb = client->Heartbeat(silent, {1});
  ASSERT_TRUE(hb.ok());
  EXPECT_TRUE(hb->unknown_worker());
  EXPECT_EQ(client->GetTask(silent, 1, 0).status().code(), absl::StatusCode::kFailedPrecondition);

  TaskResult result = MakeResult(MakeTask(1), n);
  auto pushed = client->PushUpdate(alive, result);
  ASSERT_TRUE(pushed.ok()) << pushed.status();
  auto arrived = transport_->Await(1);
  ASSERT_TRUE(arrived.ok()) << arrived.status();
  EXPECT_EQ(arrived->delta, result.delta);
  // The first worker's late (identical) result is a duplicate, counted once.
  auto late = client->PushUpdate(silent, result);
  ASSERT_TRUE(late.ok()) << late.status();
  EXPECT_TRUE(*late);
  EXPECT_EQ(transport_->stats().duplicates, 1u);
}

TEST_F(TransportTest, ResultFromTheTimedOutWorkerIsTakenIfItComesFirst) {
  GrpcServerOptions options;
  options.heartbeat_interval_s = 0.02;
  options.heartbeat_timeout_s = 0.2;
  Start(10, options);
  auto client = NewClient();
  WorkerSession slow = RegisterWorker(*client);
  transport_->Submit(MakeTask(1));
  ASSERT_EQ(client->GetTask(slow, 1, 0)->tasks_size(), 1);
  // Any RPC checks for expired workers first: a second worker registering
  // after 199 ms finds the slow one alive, after 200 ms dropped.
  clock_.Advance(absl::Milliseconds(199));
  RegisterWorker(*client);
  EXPECT_EQ(transport_->stats().tasks_requeued, 0u);
  clock_.Advance(absl::Milliseconds(1));
  WorkerSession fresh = RegisterWorker(*client);
  EXPECT_EQ(transport_->stats().workers_dropped, 1u);
  EXPECT_EQ(transport_->stats().tasks_requeued, 1u);  // task 1 back in the queue
  ASSERT_TRUE(client->PushUpdate(slow, MakeResult(MakeTask(1), 10)).ok());
  ASSERT_TRUE(transport_->Await(1).ok());
  // It left the queue: the fresh worker finds nothing to do.
  EXPECT_EQ(client->GetTask(fresh, 1, 0)->tasks_size(), 0);
  EXPECT_EQ(transport_->stats().tasks_requeued, 1u);
}

// With no RPC at all, the reaper drops a silent worker at exactly its expiry.
TEST_F(TransportTest, ReaperDropsASilentWorkerOnTime) {
  GrpcServerOptions options;
  options.heartbeat_interval_s = 0.1;
  options.heartbeat_timeout_s = 1.0;
  options.no_worker_timeout_s = 60;
  Start(10, options);
  auto client = NewClient();
  WorkerSession w = RegisterWorker(*client);
  transport_->Submit(MakeTask(1));
  ASSERT_EQ(client->GetTask(w, 1, 0)->tasks_size(), 1);
  WaitForTimedWaiters(0);  // the reaper waits for the expiry
  clock_.Advance(absl::Milliseconds(999));
  WaitForTimedWaiters(0);
  EXPECT_EQ(transport_->stats().workers_dropped, 0u);
  // Await notices the last worker leaving: it waits for the no-worker timeout.
  absl::StatusOr<TaskResult> awaited;
  std::thread waiter([&] { awaited = transport_->Await(1); });
  clock_.Advance(absl::Milliseconds(1));
  ASSERT_TRUE(clock_.BlockUntilTimedWaiters(1));  // Await, now on the no-worker timeout
  GrpcTransportStats stats = transport_->stats();
  EXPECT_EQ(stats.workers_dropped, 1u);
  EXPECT_EQ(stats.tasks_requeued, 1u);
  EXPECT_EQ(stats.workers_connected, 0u);
  clock_.Advance(absl::Seconds(60));
  waiter.join();
  EXPECT_EQ(awaited.status().code(), absl::StatusCode::kUnavailable);
}

TEST_F(TransportTest, AwaitAnyTimesOutWithNothing) {
  Start(10);
  auto client = NewClient();
  RegisterWorker(*client);
  absl::StatusOr<std::optional<TaskResult>> any;
  std::thread waiter([&] { any = transport_->AwaitAny(clock_.Now() + absl::Milliseconds(50)); });
  WaitForTimedWaiters(1);
  clock_.Advance(absl::Milliseconds(50));
  waiter.join();
  ASSERT_TRUE(any.ok());
  EXPECT_FALSE(any->has_value());
}

TEST_F(TransportTest, AwaitSaysNoWorkerIsConnected) {
  GrpcServerOptions options;
  options.no_worker_timeout_s = 0.2;
  Start(10, options);
  transport_->Submit(MakeTask(1));
  absl::StatusOr<TaskResult> result;
  std::thread waiter([&] { result = transport_->Await(1); });
  // No worker: the reaper has nothing to time; Await is the one timed waiter.
  ASSERT_TRUE(clock_.BlockUntilTimedWaiters(1));
  clock_.Advance(absl::Milliseconds(199));
  ASSERT_TRUE(clock_.BlockUntilTimedWaiters(1));
  clock_.Advance(absl::Milliseconds(1));
  waiter.join();
  EXPECT_EQ(result.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(result.status().message(), HasSubstr("no worker is connected"));
  EXPECT_EQ(transport_->Await(42).status().code(), absl::StatusCode::kNotFound);
}

}  // namespace
}  // namespace fedsim
