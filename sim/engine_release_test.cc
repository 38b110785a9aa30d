// When the engine lets the workers go (Transport::ReleaseWorkers): once it
// will dispatch nothing more and awaits no result, before the last
// evaluation where it can, and never when the config keeps them.
#include <algorithm>
#include <map>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "sim/engine.h"
#include "sim/engine_test_util.h"

namespace fedsim {
namespace {

// Each calls' name in order, shared by the transport and the evaluator.
using CallLog = std::vector<std::string>;

// Completes every task at once (its delta is 1), logging the calls.
class LoggingTransport : public Transport {
 public:
  explicit LoggingTransport(CallLog* log) : log_(log) {}
  void Submit(const TaskSpec& task) override {
    log_->push_back(absl::StrCat("submit ", task.id));
    submitted_[task.id] = task;
  }
  absl::StatusOr<TaskResult> Await(TaskId id) override {
    const TaskSpec& t = submitted_.at(id);
    TaskResult r;
    r.id = t.id;
    r.client = t.client;
    r.base = t.base;
    r.num_examples = 1;
    r.delta = {1.0f};
    return r;
  }
  absl::StatusOr<std::optional<TaskResult>> AwaitAny(absl::Time) override {
    return absl::UnimplementedError("virtual clock only");
  }
  void Cancel(TaskId id) override { log_->push_back(absl::StrCat("cancel ", id)); }
  void ReleaseWorkers() override { log_->push_back("release"); }
  void Shutdown() override { log_->push_back("shutdown"); }

 private:
  CallLog* log_;
  std::map<TaskId, TaskSpec> submitted_;
};

class LoggingEvaluator : public ConstEvaluator {
 public:
  explicit LoggingEvaluator(CallLog* log) : log_(log) {}
  MetricValues Evaluate(std::span<const float> params) override {
    log_->push_back("evaluate");
    return ConstEvaluator::Evaluate(params);
  }

 private:
  CallLog* log_;
};

CallLog RunLogged(std::vector<double> seconds_per_task, bool release) {
  CallLog log;
  CommitEachArrival alg;
  LoggingTransport transport(&log);
  ModelStore store;
  LoggingEvaluator eval(&log);
  RunObserver obs;
  EngineConfig config = MakeConfig(std::move(seconds_per_task));
  config.max_virtual_s = 0;
  config.max_commits = 3;
  config.eval_every_commits = 1;
  config.release_workers_at_stop = release;
  Engine engine(std::move(config), &alg, &transport, &store, &eval, &obs);
  absl::StatusOr<RunSummary> s = engine.Run();
  EXPECT_TRUE(s.ok()) << s.status();
  if (s.ok()) EXPECT_EQ(s->final_version, 3u);
  return log;
}

TEST(EngineReleaseTest, NothingInFlightAtTheLastCommitReleasesBeforeItsEvaluation) {
  // One client: each commit leaves nothing in flight.
  const CallLog log = RunLogged({1.0}, /*release=*/true);
  const CallLog want = {"evaluate", "submit 1", "evaluate", "submit 2",
                        "evaluate", "submit 3", "release",  "evaluate"};
  EXPECT_EQ(log, want);
}

TEST(EngineReleaseTest, TasksInFlightAtTheStopAreCancelledFirst) {
  // Two clients: the other one's task is in flight at every commit.
  const CallLog log = RunLogged({1.0, 1.5}, /*release=*/true);
  ASSERT_GE(log.size(), 3u);
  EXPECT_EQ(log[log.size() - 2].rfind("cancel ", 0), 0u) << log[log.size() - 2];
  EXPECT_EQ(log.back(), "release");
  EXPECT_EQ(std::count(log.begin(), log.end(), "release"), 1);
  // The last commit's evaluation came before: it is not repeated.
  EXPECT_EQ(log[log.size() - 3], "evaluate");
}

TEST(EngineReleaseTest, ConfigThatKeepsTheWorkersNeverReleasesThem) {
  for (const std::vector<double>& seconds : {std::vector<double>{1.0}, {1.0, 1.5}}) {
    const CallLog log = RunLogged(seconds, /*release=*/false);
    EXPECT_EQ(std::count(log.begin(), log.end(), "release"), 0);
    EXPECT_EQ(log.back().rfind(seconds.size() == 1 ? "evaluate" : "cancel ", 0), 0u) << log.back();
  }
}

}  // namespace
}  // namespace fedsim
