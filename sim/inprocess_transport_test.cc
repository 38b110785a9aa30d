#include "sim/inprocess_transport.h"

#include <memory>
#include <thread>
#include <vector>

#include "core/clock.h"
#include "gtest/gtest.h"
#include "runtime/run_setup.h"
#include "config/scenario_file.h"

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
  ASSERT_TRUE(clock_.BlockUntilTimedWaiters(1));  // task 1 "takes" 2 x 0.5 s
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
