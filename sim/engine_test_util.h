// Small fakes shared by the engine's tests: an evaluator with fixed
// figures, an observer that keeps rows, a config builder and a rule that
// starts every idle client and commits after each arrival.
#ifndef FEDSIM_SIM_ENGINE_TEST_UTIL_H_
#define FEDSIM_SIM_ENGINE_TEST_UTIL_H_

#include <span>
#include <string>
#include <vector>

#include "sim/engine.h"

namespace fedsim {

class ConstEvaluator : public EvaluatorInterface {
 public:
  MetricValues Evaluate(std::span<const float>) override {
    ++calls;
    return {{"test_loss", 0.5}, {"test_accuracy", 0.5}};
  }
  int calls = 0;
};

// Keeps the columns and rows the engine reports.
class RecordingObserver : public RunObserver {
 public:
  void OnStart(const std::vector<std::string>& columns) override { columns_ = columns; }
  void OnEvaluation(const MetricsRow& row) override { rows_.push_back(row); }
  std::vector<std::string> columns_;
  std::vector<MetricsRow> rows_;
};

inline EngineConfig MakeConfig(std::vector<double> seconds_per_task) {
  EngineConfig c;
  c.seed = 7;
  for (double s : seconds_per_task) {
    ClientInfo info;
    info.num_examples = 1;
    c.clients.push_back(info);
    DeviceProfile p;
    p.seconds_per_example = s;
    c.profiles.push_back(p);
    c.examples_per_task.push_back(1);
  }
  c.initial_params = {0.0f};
  c.max_virtual_s = 100;
  c.eval_every_commits = 0;
  return c;
}

// Starts every idle client whenever it can and commits after each arrival.
class CommitEachArrival : public Algorithm {
 public:
  std::string_view Name() const override { return "commit_each"; }
  absl::StatusOr<std::vector<Dispatch>> Select(const FleetView& fleet, Rng&) override {
    std::vector<Dispatch> out;
    for (ClientId c : fleet.idle_available()) out.push_back(Dispatch{.client = c});
    return out;
  }
  absl::Status Accept(const FleetView&, ClientUpdate) override {
    ++buffered_;
    return absl::OkStatus();
  }
  bool ReadyToCommit(const FleetView&) const override { return buffered_ > 0; }
  absl::StatusOr<CommitResult> Commit(const FleetView&, ModelBank&) override {
    buffered_ = 0;
    return CommitResult{};
  }
  absl::Status SaveState(AlgorithmState*) const override { return absl::OkStatus(); }
  absl::Status LoadState(const AlgorithmState&) override { return absl::OkStatus(); }

 private:
  int buffered_ = 0;
};

}  // namespace fedsim

#endif  // FEDSIM_SIM_ENGINE_TEST_UTIL_H_
