// ReleaseWorkers: the engine will dispatch nothing more, so workers hear
// run_finished at once (at their poll, parked or new, and heartbeat) while
// the transport goes on taking results and answering Await until Shutdown.
#include <memory>
#include <thread>

#include "gtest/gtest.h"
#include "server/transport_test_fixture.h"

namespace fedsim {
namespace testing_internal {
namespace {

TEST_F(TransportTest, ReleasedWorkersHearTheEndWhileResultsAreStillTaken) {
  const size_t n = 100;
  Start(n);
  auto client = NewClient();
  WorkerSession w = RegisterWorker(*client);  // 2 slots
  transport_->Submit(MakeTask(1));
  auto lease = client->GetTask(w, 1, 0);
  ASSERT_TRUE(lease.ok()) << lease.status();
  ASSERT_EQ(lease->tasks_size(), 1);

  // The worker's second slot polls and parks: nothing is pending.
  absl::StatusOr<wire::GetTaskResponse> poll;
  std::thread poller([&] { poll = client->GetTask(w, 1, 8.0); });
  ASSERT_TRUE(AwaitPollsParked(1));
  EXPECT_FALSE(transport_->stats().workers_released);
  transport_->ReleaseWorkers();
  transport_->ReleaseWorkers();  // idempotent
  poller.join();
  ASSERT_TRUE(poll.ok()) << poll.status();
  EXPECT_TRUE(poll->run_finished());
  EXPECT_EQ(poll->tasks_size(), 0);
  EXPECT_TRUE(transport_->stats().workers_released);

  // Heartbeats and new polls say so too, and a push asking for more tasks
  // gets none, but its result is taken and awaited as before.
  auto hb = client->Heartbeat(w, {1});
  ASSERT_TRUE(hb.ok()) << hb.status();
  EXPECT_TRUE(hb->run_finished());
  transport_->Submit(MakeTask(2));  // the contract says none comes; it is not leased
  auto again = client->GetTask(w, 1, 0);
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_TRUE(again->run_finished());
  EXPECT_EQ(again->tasks_size(), 0);
  auto pushed = client->PushUpdateAndLease(w, MakeResult(MakeTask(1), n), 2);
  ASSERT_TRUE(pushed.ok()) << pushed.status();
  EXPECT_TRUE(pushed->tasks.empty());
  absl::StatusOr<TaskResult> got = transport_->Await(1);
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(got->id, 1u);
  EXPECT_EQ(got->delta, MakeResult(MakeTask(1), n).delta);

  // A worker that joins now hears the end at its first poll.
  auto late = NewClient();
  WorkerSession l = RegisterWorker(*late);
  auto late_poll = late->GetTask(l, 1, 0);
  ASSERT_TRUE(late_poll.ok()) << late_poll.status();
  EXPECT_TRUE(late_poll->run_finished());
  transport_->Shutdown();
}

}  // namespace
}  // namespace testing_internal
}  // namespace fedsim
