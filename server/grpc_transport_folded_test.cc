// PushFolded: a worker's exact sum of several tasks' weighted deltas becomes
// one result per task, sharing the sum; resends are duplicates; a sum that
// overlaps a result the server has is refused and its other tasks requeued.
#include <algorithm>
#include <memory>
#include <optional>
#include <thread>
#include <vector>

#include "gtest/gtest.h"
#include "server/transport_test_fixture.h"

namespace fedsim {
namespace testing_internal {
namespace {

TaskSpec FoldTask(TaskId id, ClientId client, uint64_t group = 7) {
  TaskSpec spec = MakeTask(id, client);
  spec.fold_group = group;
  spec.fold_weight = 1.0;
  return spec;
}

// The batch a worker would push for `ids` (clients id % 16), each delta
// MakeResult's with value 0.25 * id.
AggregatorClient::FoldedBatch Batch(uint64_t fold_id, const std::vector<TaskId>& ids, size_t n) {
  AggregatorClient::FoldedBatch batch;
  batch.fold_id = fold_id;
  batch.group = 7;
  batch.sum = ExactSum(n);
  for (TaskId id : ids) {
    TaskResult r =
        MakeResult(FoldTask(id, static_cast<ClientId>(id % 16)), n, 0.25f * static_cast<float>(id));
    EXPECT_TRUE(batch.sum.Add(1.0, r.delta).ok());
    r.delta.clear();
    r.metrics["train_loss"] = static_cast<double>(id);
    batch.tasks.push_back(std::move(r));
  }
  return batch;
}

// Registers a worker of `slots` slots that hands its updates and sums over
// in shared memory.
void RegisterSharing(AggregatorClient& client, size_t n, uint32_t slots, WorkerSession* w) {
  auto registered = client.Register("shm", slots);
  ASSERT_TRUE(registered.ok()) << registered.status();
  ASSERT_TRUE(registered->shared_memory_updates());
  *w = WorkerSession::Of(*registered);
  client.UseSharedMemory(n, slots, nullptr);
}

TEST_F(TransportTest, AFoldedSumBecomesOneResultPerTaskSharingIt) {
  const size_t n = 300'000;  // 2.4 MB of values: the sum streams in three chunks
  Start(n);
  auto client = NewClient();
  WorkerSession w = RegisterWorker(*client);
  for (TaskId id : {1, 2, 3}) transport_->Submit(FoldTask(id, static_cast<ClientId>(id)));
  auto lease = client->GetTask(w, 3, 1.0);
  ASSERT_TRUE(lease.ok()) << lease.status();
  ASSERT_EQ(lease->tasks_size(), 3);
  EXPECT_EQ(lease->tasks(0).fold_group(), 7u);
  EXPECT_EQ(lease->tasks(0).fold_weight(), 1.0);

  const AggregatorClient::FoldedBatch batch = Batch(11, {1, 2, 3}, n);
  auto pushed = client->PushFolded(w, batch, 0);
  ASSERT_TRUE(pushed.ok()) << pushed.status();
  EXPECT_FALSE(pushed->duplicate);
  std::shared_ptr<const FoldedSum> shared;
  for (TaskId id : {1, 2, 3}) {
    auto r = transport_->Await(id);
    ASSERT_TRUE(r.ok()) << r.status();
    ASSERT_NE(r->folded, nullptr);
    EXPECT_TRUE(r->delta.empty());
    EXPECT_EQ(r->client, id);
    EXPECT_EQ(r->num_examples, 60u);  // the server's n_i
    EXPECT_EQ(r->metrics.at("train_loss"), static_cast<double>(id));
    if (shared == nullptr) shared = r->folded;
    EXPECT_EQ(r->folded, shared);  // one sum, not three copies
  }
  EXPECT_EQ(shared->tasks, (std::vector<TaskId>{1, 2, 3}));
  EXPECT_TRUE(std::ranges::equal(shared->values(), batch.sum.values()));

  // The same batch again (its answer was lost): a duplicate, nothing new.
  pushed = client->PushFolded(w, batch, 0);
  ASSERT_TRUE(pushed.ok()) << pushed.status();
  EXPECT_TRUE(pushed->duplicate);
  const GrpcTransportStats stats = transport_->stats();
  EXPECT_EQ(stats.updates_accepted, 3u);
  EXPECT_EQ(stats.folded_sums, 1u);
  EXPECT_EQ(stats.duplicates, 1u);
}

TEST_F(TransportTest, AWorkerOnThisMachineHandsItsSumOverInSharedMemory) {
  const size_t n = 300'000;
  Start(n);
  auto client = NewClient();
  WorkerSession w;
  ASSERT_NO_FATAL_FAILURE(RegisterSharing(*client, n, 2, &w));
  for (TaskId id : {1, 2, 3, 4}) transport_->Submit(FoldTask(id, static_cast<ClientId>(id)));
  ASSERT_EQ(client->GetTask(w, 4, 1.0)->tasks_size(), 4);
  // Two sums, one after the other through the same segment.
  const AggregatorClient::FoldedBatch first = Batch(1, {1, 2}, n);
  const AggregatorClient::FoldedBatch second = Batch(2, {3, 4}, n);
  ASSERT_TRUE(client->PushFolded(w, first, 0).ok());
  ASSERT_TRUE(client->PushFolded(w, second, 0).ok());
  EXPECT_EQ(client->bytes_shared(), 2 * n * sizeof(int64_t));
  EXPECT_EQ(transport_->stats().bytes_received, 0u);  // nothing came through the socket
  for (TaskId id : {1, 2, 3, 4}) {
    auto r = transport_->Await(id);
    ASSERT_TRUE(r.ok()) << r.status();
    ASSERT_NE(r->folded, nullptr);
    EXPECT_TRUE(std::ranges::equal(r->folded->values(), (id <= 2 ? first : second).sum.values()))
        << id;
  }
}

TEST_F(TransportTest, ASumBuiltInALentSlotGoesOverWithoutACopy) {
  const size_t n = 300'000;
  Start(n);
  auto client = NewClient();
  WorkerSession w;
  // One training slot: two slots for sums, so that one can be built while
  // the server holds the other.
  ASSERT_NO_FATAL_FAILURE(RegisterSharing(*client, n, 1, &w));
  for (TaskId id : {1, 2, 3, 4}) transport_->Submit(FoldTask(id, static_cast<ClientId>(id)));
  ASSERT_EQ(client->GetTask(w, 4, 1.0)->tasks_size(), 4);

  // A batch as a worker builds it: the sum in the lent slot, tasks 1 and 2.
  const AggregatorClient::FoldedBatch expected = Batch(1, {1, 2}, n);
  AggregatorClient::FoldedBatch batch;
  batch.fold_id = 1;
  batch.group = 7;
  batch.tasks = expected.tasks;
  batch.in_slot = client->LendSumSlot(n);
  ASSERT_TRUE(batch.in_slot.has_value());
  const int64_t* const first_slot = batch.in_slot->values().data();
  {
    std::optional<AggregatorClient::SumSlot> other = client->LendSumSlot(n);
    ASSERT_TRUE(other.has_value());
    EXPECT_FALSE(client->LendSumSlot(n).has_value());  // both lent
  }
  EXPECT_FALSE(client->LendSumSlot(n + 1).has_value());  // and sums of another size stream
  for (TaskId id : {1, 2}) {
    const std::vector<float> delta = MakeResult(FoldTask(id, id), n, 0.25f * id).delta;
    ASSERT_TRUE((id == 1 ? ExactSum::AssignInto(batch.in_slot->values(), 1.0, delta)
                         : ExactSum::AddInto(batch.in_slot->values(), 1.0, delta))
                    .ok());
  }
  ASSERT_TRUE(client->PushFolded(w, batch, 0).ok());
  EXPECT_EQ(client->bytes_shared(), n * sizeof(int64_t));
  EXPECT_EQ(transport_->stats().bytes_received, 0u);
  std::vector<std::shared_ptr<const FoldedSum>> kept;
  for (TaskId id : {1, 2}) {
    auto r = transport_->Await(id);
    ASSERT_TRUE(r.ok()) << r.status();
    ASSERT_NE(r->folded, nullptr);
    // Read in place: the server's sum is the worker's slot, not a copy.
    EXPECT_TRUE(r->folded->sum.empty());
    EXPECT_TRUE(std::ranges::equal(r->folded->values(), expected.sum.values())) << id;
    kept.push_back(r->folded);
  }
  // The batch is done, but the server still reads its slot: the other one is
  // lent, and no more.
  batch.in_slot.reset();
  {
    std::optional<AggregatorClient::SumSlot> other = client->LendSumSlot(n);
    ASSERT_TRUE(other.has_value());
    EXPECT_NE(other->values().data(), first_slot);
    EXPECT_FALSE(client->LendSumSlot(n).has_value());
  }
  kept.clear();  // the engine is done with the sum: its slot comes back
  std::optional<AggregatorClient::SumSlot> slot = client->LendSumSlot(n);
  std::optional<AggregatorClient::SumSlot> spare = client->LendSumSlot(n);
  ASSERT_TRUE(slot.has_value() && spare.has_value());
  EXPECT_TRUE(slot->values().data() == first_slot || spare->values().data() == first_slot);
  spare.reset();

  // A push through the slot that fails retires it (the server might be
  // reading it); the values stay here, and the retry goes through the other
  // slot (a copy), or streams when none is free.
  const AggregatorClient::FoldedBatch next = Batch(2, {3, 4}, n);
  batch.fold_id = 2;
  batch.tasks = {next.tasks[1], next.tasks[0]};  // not ascending: refused
  batch.in_slot = std::move(slot);
  const int64_t* const retired = batch.in_slot->values().data();
  std::copy(next.sum.values().begin(), next.sum.values().end(), batch.in_slot->values().begin());
  EXPECT_EQ(client->PushFolded(w, batch, 0).status().code(), absl::StatusCode::kInvalidArgument);
  batch.tasks = next.tasks;
  ASSERT_TRUE(client->PushFolded(w, batch, 0).ok());
  EXPECT_EQ(transport_->stats().bytes_received, 0u);
  EXPECT_EQ(client->bytes_shared(), 2 * n * sizeof(int64_t));
  for (TaskId id : {3, 4}) {
    auto r = transport_->Await(id);
    ASSERT_TRUE(r.ok()) << r.status();
    ASSERT_NE(r->folded, nullptr);
    EXPECT_TRUE(std::ranges::equal(r->folded->values(), next.sum.values())) << id;
    kept.push_back(r->folded);
  }
  batch.in_slot.reset();
  // The retired slot is never lent again, and the other one is held.
  EXPECT_FALSE(client->LendSumSlot(n).has_value());
  kept.clear();
  slot = client->LendSumSlot(n);
  ASSERT_TRUE(slot.has_value());
  EXPECT_NE(slot->values().data(), retired);
  EXPECT_FALSE(client->LendSumSlot(n).has_value());

  // With no slot free, a sum streams.
  for (TaskId id : {5, 6}) transport_->Submit(FoldTask(id, static_cast<ClientId>(id)));
  ASSERT_EQ(client->GetTask(w, 2, 1.0)->tasks_size(), 2);
  const AggregatorClient::FoldedBatch last = Batch(3, {5, 6}, n);
  ASSERT_TRUE(client->PushFolded(w, last, 0).ok());
  EXPECT_EQ(transport_->stats().bytes_received, n * sizeof(int64_t));
  for (TaskId id : {5, 6}) {
    auto r = transport_->Await(id);
    ASSERT_TRUE(r.ok()) << r.status();
    ASSERT_NE(r->folded, nullptr);
    EXPECT_FALSE(r->folded->sum.empty());  // its own copy: nothing to hold
    EXPECT_TRUE(std::ranges::equal(r->folded->values(), last.sum.values())) << id;
  }
}

TEST_F(TransportTest, AFoldedSumOverlappingAResultIsRefusedAndItsOtherTasksRequeued) {
  const size_t n = 50;
  Start(n);
  auto client = NewClient();
  WorkerSession a = RegisterWorker(*client);
  for (TaskId id : {1, 2, 3}) transport_->Submit(FoldTask(id, static_cast<ClientId>(id)));
  ASSERT_EQ(client->GetTask(a, 3, 1.0)->tasks_size(), 3);
  // Task 2 already came on its own (as after a lease expired elsewhere).
  TaskResult alone = MakeResult(FoldTask(2, 2), n);
  ASSERT_TRUE(client->PushUpdate(a, alone).ok());
  auto pushed = client->PushFolded(a, Batch(1, {1, 2, 3}, n), 0);
  EXPECT_EQ(pushed.status().code(), absl::StatusCode::kFailedPrecondition) << pushed.status();
  EXPECT_EQ(transport_->stats().folded_overlaps, 1u);
  // Tasks 1 and 3 are trained again: leased anew, and their results taken.
  auto again = client->GetTask(a, 3, 1.0);
  ASSERT_TRUE(again.ok()) << again.status();
  ASSERT_EQ(again->tasks_size(), 2);
  EXPECT_EQ(again->tasks(0).task_id(), 1u);
  EXPECT_EQ(again->tasks(1).task_id(), 3u);
  ASSERT_TRUE(client->PushFolded(a, Batch(2, {1, 3}, n), 0).ok());
  for (TaskId id : {1, 2, 3}) {
    auto r = transport_->Await(id);
    ASSERT_TRUE(r.ok()) << r.status();
    EXPECT_EQ(r->folded != nullptr, id != 2);
  }
}

// A fold group is shared out by the work left to do: a worker that says it
// has trained all it holds gets a full share of what is left; one that does
// not say counts every task it holds.
TEST_F(TransportTest, AFoldGroupIsSharedOutByTheTasksLeftToTrain) {
  std::unique_ptr<AggregatorClient> client;
  WorkerSession a, b;
  // A fresh server with 16 tasks of one group to share between two workers.
  auto fresh = [&] {
    TearDown();
    Start(40);
    client = NewClient();
    a = RegisterWorker(*client);
    b = RegisterWorker(*client);
    for (TaskId id = 1; id <= 16; ++id) {
      transport_->Submit(FoldTask(id, static_cast<ClientId>(id % 16)));
    }
  };
  fresh();
  // Workers that have nothing: 8 and 8 at most.
  ASSERT_EQ(client->GetTask(a, 10, 1.0, 0)->tasks_size(), 8);
  ASSERT_EQ(client->GetTask(b, 4, 1.0, 0)->tasks_size(), 4);
  // a has trained its 8, b has its 4 still to train: of the 4 queued, a
  // gets an equal part of 8 left, all 4.
  EXPECT_EQ(client->GetTask(a, 10, 1.0, 0)->tasks_size(), 4);

  // The same with workers that do not say what they trained: a holds 8 of
  // the 16, more than half, so it gets only one.
  fresh();
  ASSERT_EQ(client->GetTask(a, 10, 1.0)->tasks_size(), 8);
  ASSERT_EQ(client->GetTask(b, 4, 1.0)->tasks_size(), 4);
  EXPECT_EQ(client->GetTask(a, 10, 1.0)->tasks_size(), 1);
}

TEST_F(TransportTest, ParkedPollsShareABatchOutWhenItEnds) {
  Start(40);
  auto client = NewClient();
  WorkerSession a = RegisterWorker(*client);
  WorkerSession b = RegisterWorker(*client);
  absl::StatusOr<wire::GetTaskResponse> got_a, got_b;
  std::thread poll_a([&] { got_a = client->GetTask(a, 16, 5.0, 0); });
  std::thread poll_b([&] { got_b = client->GetTask(b, 16, 5.0, 0); });
  ASSERT_TRUE(AwaitPollsParked(2));
  transport_->BeginBatch();
  for (TaskId id = 1; id <= 10; ++id) {
    transport_->Submit(FoldTask(id, static_cast<ClientId>(id)));
  }
  // Served one submission at a time, the first poll would have had the fair
  // share of one queued task: one task.
  EXPECT_EQ(transport_->stats().polls_parked, 2u);
  transport_->EndBatch();
  poll_a.join();
  poll_b.join();
  ASSERT_TRUE(got_a.ok()) << got_a.status();
  ASSERT_TRUE(got_b.ok()) << got_b.status();
  EXPECT_EQ(got_a->tasks_size(), 5);
  EXPECT_EQ(got_b->tasks_size(), 5);
}

TEST_F(TransportTest, APollDuringABatchWaitsForItsEnd) {
  Start(40);
  auto client = NewClient();
  WorkerSession a = RegisterWorker(*client);
  transport_->BeginBatch();
  for (TaskId id = 1; id <= 3; ++id) transport_->Submit(FoldTask(id, static_cast<ClientId>(id)));
  absl::StatusOr<wire::GetTaskResponse> got;
  std::thread poll([&] { got = client->GetTask(a, 16, 5.0, 0); });
  ASSERT_TRUE(AwaitPollsParked(1));  // not answered with 3 of the 6
  for (TaskId id = 4; id <= 6; ++id) transport_->Submit(FoldTask(id, static_cast<ClientId>(id)));
  transport_->EndBatch();
  poll.join();
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(got->tasks_size(), 6);
  // Outside a batch each submission is served at once.
  std::thread next([&] { got = client->GetTask(a, 16, 5.0, 0); });
  ASSERT_TRUE(AwaitPollsParked(1));
  transport_->Submit(FoldTask(7, 7));
  next.join();
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(got->tasks_size(), 1);
  // A poll held back by a batch that submits nothing is still served at its
  // end, with what was queued before.
  transport_->Submit(FoldTask(8, 8));
  transport_->BeginBatch();
  std::thread held([&] { got = client->GetTask(a, 16, 5.0, 0); });
  ASSERT_TRUE(AwaitPollsParked(1));
  transport_->EndBatch();
  held.join();
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(got->tasks_size(), 1);
}

TEST_F(TransportTest, AFoldedSumIsCheckedBeforeItIsTaken) {
  const size_t n = 40;
  Start(n);
  auto client = NewClient();
  WorkerSession w = RegisterWorker(*client);
  WorkerSession other = RegisterWorker(*client);
  transport_->Submit(FoldTask(1, 1));
  transport_->Submit(FoldTask(2, 2));
  transport_->Submit(MakeTask(3, 3));  // not to be pre-aggregated
  // A fold group's tasks go out in shares of the queue per worker: 2 of 3
  // to the first of two workers, then the last one.
  ASSERT_EQ(client->GetTask(w, 3, 1.0)->tasks_size(), 2);
  ASSERT_EQ(client->GetTask(w, 3, 1.0)->tasks_size(), 1);
  auto code = [&](const WorkerSession& s, const AggregatorClient::FoldedBatch& b) {
    return client->PushFolded(s, b, 0).status().code();
  };
  // Another worker's lease.
  EXPECT_EQ(code(other, Batch(1, {1, 2}, n)), absl::StatusCode::kFailedPrecondition);
  // A task outside the group, a wrong size, ids out of order, no tasks.
  EXPECT_EQ(code(w, Batch(2, {1, 3}, n)), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(code(w, Batch(3, {1, 2}, n + 1)), absl::StatusCode::kInvalidArgument);
  AggregatorClient::FoldedBatch reversed = Batch(4, {1, 2}, n);
  std::swap(reversed.tasks[0], reversed.tasks[1]);
  EXPECT_EQ(code(w, reversed), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(code(w, Batch(5, {}, n)), absl::StatusCode::kInvalidArgument);
  AggregatorClient::FoldedBatch other_group = Batch(6, {1, 2}, n);
  other_group.group = 8;
  EXPECT_EQ(code(w, other_group), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(transport_->stats().updates_accepted, 0u);
  // Then the right one goes through.
  ASSERT_TRUE(client->PushFolded(w, Batch(7, {1, 2}, n), 0).ok());
  EXPECT_EQ(transport_->stats().updates_accepted, 2u);
}

}  // namespace
}  // namespace testing_internal
}  // namespace fedsim
