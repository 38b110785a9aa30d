#include "sim/inprocess_transport.h"

#include <algorithm>
#include <limits>
#include <memory>
#include <set>
#include <thread>
#include <vector>

#include "config/scenario_file.h"
#include "core/clock.h"
#include "gtest/gtest.h"
#include "runtime/run_setup.h"

namespace fedsim {
namespace {

const ModelRef kBase = ModelRef::Global(0);

class InProcessTransportTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto s = ParseScenarioText(
        "num_clients: 6\n"
        "dataset { synthetic { alpha: 1 beta: 1 } }\n"
        "model { softmax {} }\n"
        "algorithm { fedavg { clients_per_round: 2 } }\n"
        "local { steps: 3 batch_size: 10 lr: 0.01 }\n"
        "stop { max_commits: 1 }\n",
        "tiny.textproto", {});
    ASSERT_TRUE(s.ok()) << s.status();
    scenario_ = *s;
    auto data = BuildRunData(scenario_, ".");
    ASSERT_TRUE(data.ok()) << data.status();
    data_ = std::make_unique<RunData>(std::move(data).value());
    runner_ = std::make_unique<TaskRunner>(data_.get());
    auto model = NewModel(data_->model);
    ASSERT_TRUE(model.ok());
    auto params = std::make_shared<std::vector<float>>((*model)->NumParams());
    (*model)->Init(1, *params);
    store_.Put(kBase, params);
  }

  std::unique_ptr<Transport> NewTransport(int slots, double time_scale) {
    InProcessOptions options;
    options.slots = slots;
    options.time_scale = time_scale;
    options.clock = &clock_;
    return NewInProcessTransport(runner_.get(), &store_, options);
  }

  TaskSpec Task(TaskId id, double due, double duration_s = 1) {
    TaskSpec spec;
    spec.id = id;
    spec.client = static_cast<ClientId>(id % 6);
    spec.base = kBase;
    spec.seed = 10 + id;
    spec.local = scenario_.local();
    spec.duration_s = duration_s;
    spec.due = due;
    return spec;
  }

  TaskSpec Folded(TaskId id, double due, double weight, double duration_s = 1) {
    TaskSpec spec = Task(id, due, duration_s);
    spec.fold_group = 7;
    spec.fold_weight = weight;
    return spec;
  }

  // sum over `ids` of weight(id) * delta(id), the deltas trained alone.
  ExactSum DirectSum(const std::vector<TaskId>& ids, double (*weight)(TaskId)) {
    ExactSum sum(NumParams());
    for (TaskId id : ids) {
      auto r = runner_->Run(Task(id, 0), *store_.Get(kBase));
      EXPECT_TRUE(r.ok()) << r.status();
      if (r.ok()) {
        EXPECT_TRUE(sum.Add(weight(id), r->delta).ok());
      }
    }
    return sum;
  }

  size_t NumParams() { return store_.Get(kBase)->size(); }

  FakeClock clock_;
  config::Scenario scenario_;
  std::unique_ptr<RunData> data_;
  std::unique_ptr<TaskRunner> runner_;
  ModelStore store_;
};

TEST_F(InProcessTransportTest, ResultsAreTheTaskRunnersOnAnyNumberOfSlots) {
  for (int slots : {1, 3}) {
    std::unique_ptr<Transport> transport = NewTransport(slots, 0);
    for (TaskId id = 1; id <= 6; ++id) transport->Submit(Task(id, static_cast<double>(id)));
    for (TaskId id = 6; id >= 1; --id) {  // any order
      auto got = transport->Await(id);
      ASSERT_TRUE(got.ok()) << got.status();
      auto want = runner_->Run(Task(id, 0), *store_.Get(kBase));
      ASSERT_TRUE(want.ok());
      EXPECT_EQ(got->base, kBase);
      EXPECT_EQ(got->delta, want->delta) << "task " << id << ", " << slots << " slots";
      EXPECT_EQ(got->metrics, want->metrics);
    }
  }
}

// Wall-clock emulation on a FakeClock holds the one slot for exactly each
// task's duration; meanwhile the queue is served earliest-due first, and a
// cancelled task never runs.
TEST_F(InProcessTransportTest, EarliestDueFirstAndEmulatedDurations) {
  std::unique_ptr<Transport> transport = NewTransport(1, /*time_scale=*/2);
  transport->Submit(Task(1, /*due=*/10, /*duration_s=*/0.5));  // starts at once
  ASSERT_TRUE(clock_.BlockUntilTimedWaiters(1));               // task 1 "takes" 2 x 0.5 s
  transport->Submit(Task(2, 30));
  transport->Submit(Task(3, 20));
  transport->Submit(Task(4, 25));
  transport->Cancel(4);
  std::vector<TaskId> order;
  auto next = [&] {
    auto r = transport->AwaitAny(clock_.Now());  // what has arrived by now
    EXPECT_TRUE(r.ok()) << r.status();
    if (r.ok() && r->has_value()) order.push_back((*r)->id);
  };
  clock_.Advance(absl::Milliseconds(999));
  next();
  EXPECT_TRUE(order.empty());  // 1 ms short
  clock_.Advance(absl::Milliseconds(1));
  ASSERT_TRUE(clock_.BlockUntilTimedWaiters(1));  // task 3 (due 20) has the slot
  next();
  clock_.Advance(absl::Seconds(2));
  ASSERT_TRUE(clock_.BlockUntilTimedWaiters(1));  // then task 2 (due 30)
  next();
  clock_.Advance(absl::Seconds(2));
  auto last = transport->Await(2);
  ASSERT_TRUE(last.ok()) << last.status();
  order.push_back(last->id);
  EXPECT_EQ(order, (std::vector<TaskId>{1, 3, 2}));
}

TEST_F(InProcessTransportTest, AwaitAnyWaitsUntilItsDeadlineOnTheClock) {
  std::unique_ptr<Transport> transport = NewTransport(1, 0);
  absl::StatusOr<std::optional<TaskResult>> any;
  std::thread waiter([&] { any = transport->AwaitAny(clock_.Now() + absl::Seconds(3)); });
  ASSERT_TRUE(clock_.BlockUntilTimedWaiters(1));
  clock_.Advance(absl::Seconds(3));
  waiter.join();
  ASSERT_TRUE(any.ok()) << any.status();
  EXPECT_FALSE(any->has_value());
}

double WeightOf(TaskId id) { return 0.25 * static_cast<double>(id); }

// Tasks of a fold group come back without their deltas, each naming the
// sum of the thread that trained it; the sums cover every task once and add
// up to the deltas' weighted sum, bit for bit, on any number of slots.
TEST_F(InProcessTransportTest, FoldedTasksComeBackAsExactSumsOnAnyNumberOfSlots) {
  const std::vector<TaskId> ids = {1, 2, 3, 4, 5, 6};
  const ExactSum want = DirectSum(ids, WeightOf);
  for (int slots : {1, 2, 3}) {
    std::unique_ptr<Transport> transport = NewTransport(slots, 0);
    for (TaskId id : ids) transport->Submit(Folded(id, static_cast<double>(id), WeightOf(id)));
    std::set<const FoldedSum*> sums;
    std::vector<TaskId> covered;
    ExactSum total(NumParams());
    for (TaskId id : ids) {
      auto got = transport->Await(id);
      ASSERT_TRUE(got.ok()) << got.status();
      EXPECT_TRUE(got->delta.empty());
      auto alone = runner_->Run(Task(id, 0), *store_.Get(kBase));
      ASSERT_TRUE(alone.ok()) << alone.status();
      EXPECT_EQ(got->num_examples, alone->num_examples) << "the figures stay per task";
      EXPECT_EQ(got->metrics, alone->metrics);
      ASSERT_NE(got->folded, nullptr);
      EXPECT_EQ(got->folded->group, 7u);
      EXPECT_TRUE(std::is_sorted(got->folded->tasks.begin(), got->folded->tasks.end()));
      EXPECT_NE(std::find(got->folded->tasks.begin(), got->folded->tasks.end(), id),
                got->folded->tasks.end());
      if (sums.insert(got->folded.get()).second) {
        covered.insert(covered.end(), got->folded->tasks.begin(), got->folded->tasks.end());
        ASSERT_TRUE(total.Merge(got->folded->sum).ok());
      }
    }
    std::sort(covered.begin(), covered.end());
    EXPECT_EQ(covered, ids) << slots << " slots";
    EXPECT_LE(sums.size(), ids.size());
    EXPECT_TRUE(total == want) << slots << " slots";
  }
}

// Without pre-aggregation (GPU slots) a fold group's deltas come back one
// by one, as the runner makes them.
TEST_F(InProcessTransportTest, WithoutPreAggregationFoldedTasksComeBackAlone) {
  InProcessOptions options;
  options.slots = 2;
  options.clock = &clock_;
  options.pre_aggregate = false;
  std::unique_ptr<Transport> transport = NewInProcessTransport(runner_.get(), &store_, options);
  for (TaskId id = 1; id <= 4; ++id) {
    transport->Submit(Folded(id, static_cast<double>(id), WeightOf(id)));
  }
  for (TaskId id = 1; id <= 4; ++id) {
    auto got = transport->Await(id);
    ASSERT_TRUE(got.ok()) << got.status();
    EXPECT_EQ(got->folded, nullptr);
    auto want = runner_->Run(Task(id, 0), *store_.Get(kBase));
    ASSERT_TRUE(want.ok());
    EXPECT_EQ(got->delta, want->delta);
  }
}

// One thread trains a whole group in a row into one sum: here the slot is
// held by an unfolded task while the group is queued behind it.
TEST_F(InProcessTransportTest, OneSlotFoldsAQueuedGroupIntoOneSum) {
  std::unique_ptr<Transport> transport = NewTransport(1, /*time_scale=*/1);
  transport->Submit(Task(10, /*due=*/0, /*duration_s=*/1));
  ASSERT_TRUE(clock_.BlockUntilTimedWaiters(1));
  for (TaskId id = 1; id <= 4; ++id) {
    transport->Submit(Folded(id, static_cast<double>(id), WeightOf(id), /*duration_s=*/0));
  }
  clock_.Advance(absl::Seconds(1));
  auto alone = transport->Await(10);
  ASSERT_TRUE(alone.ok()) << alone.status();
  EXPECT_EQ(alone->folded, nullptr);
  EXPECT_FALSE(alone->delta.empty());
  std::shared_ptr<const FoldedSum> first;
  for (TaskId id = 1; id <= 4; ++id) {
    auto got = transport->Await(id);
    ASSERT_TRUE(got.ok()) << got.status();
    if (first == nullptr) first = got->folded;
    EXPECT_EQ(got->folded, first);
  }
  ASSERT_NE(first, nullptr);
  EXPECT_EQ(first->tasks, (std::vector<TaskId>{1, 2, 3, 4}));
  EXPECT_TRUE(first->sum == DirectSum({1, 2, 3, 4}, WeightOf));
}

// A delta the sum refuses (here: an infinite weight) comes back on its own,
// for the engine to name; the others of the group are still summed.
TEST_F(InProcessTransportTest, ADeltaTheSumRefusesComesBackAlone) {
  std::unique_ptr<Transport> transport = NewTransport(1, 0);
  transport->Submit(Folded(1, 1, WeightOf(1)));
  transport->Submit(Folded(2, 2, std::numeric_limits<double>::infinity()));
  transport->Submit(Folded(3, 3, WeightOf(3)));
  auto refused = transport->Await(2);
  ASSERT_TRUE(refused.ok()) << refused.status();
  EXPECT_EQ(refused->folded, nullptr);
  EXPECT_EQ(refused->delta.size(), NumParams());
  ExactSum total(NumParams());
  std::set<const FoldedSum*> sums;
  for (TaskId id : {1, 3}) {
    auto got = transport->Await(id);
    ASSERT_TRUE(got.ok()) << got.status();
    ASSERT_NE(got->folded, nullptr);
    if (sums.insert(got->folded.get()).second) {
      ASSERT_TRUE(total.Merge(got->folded->sum).ok());
    }
  }
  EXPECT_TRUE(total == DirectSum({1, 3}, WeightOf));
}

// A sum cannot be split: when a task in a thread's open sum is cancelled,
// the sum is dropped and its other tasks are trained again into a new one.
TEST_F(InProcessTransportTest, CancellingATaskInAnOpenSumTrainsTheOthersAgain) {
  std::unique_ptr<Transport> transport = NewTransport(1, /*time_scale=*/1);
  transport->Submit(Folded(1, 1, WeightOf(1), /*duration_s=*/1));
  transport->Submit(Folded(2, 2, WeightOf(2), /*duration_s=*/1));
  ASSERT_TRUE(clock_.BlockUntilTimedWaiters(1));  // task 1 trains
  clock_.Advance(absl::Seconds(1));
  ASSERT_TRUE(clock_.BlockUntilTimedWaiters(1));  // task 2 trains; 1 is in the sum
  transport->Cancel(1);
  clock_.Advance(absl::Seconds(1));
  ASSERT_TRUE(clock_.BlockUntilTimedWaiters(1));  // task 2 trains again
  clock_.Advance(absl::Seconds(1));
  auto got = transport->Await(2);
  ASSERT_TRUE(got.ok()) << got.status();
  ASSERT_NE(got->folded, nullptr);
  EXPECT_EQ(got->folded->tasks, (std::vector<TaskId>{2}));
  EXPECT_TRUE(got->folded->sum == DirectSum({2}, WeightOf));
}

TEST_F(InProcessTransportTest, ShutdownCancelsWaiters) {
  std::unique_ptr<Transport> transport = NewTransport(1, 0);
  transport->Shutdown();
  transport->Submit(Task(1, 1));  // never runs
  EXPECT_EQ(transport->Await(1).status().code(), absl::StatusCode::kCancelled);
  EXPECT_EQ(transport->AwaitAny(clock_.Now() + absl::Hours(1)).status().code(),
            absl::StatusCode::kCancelled);
}

}  // namespace
}  // namespace fedsim
