// What the engine reports while it runs: the event log, metrics rows and the
// progress line are all observers of these calls.
//
// Thread safety: called only from the engine thread.
#ifndef FEDSIM_SIM_RUN_OBSERVER_H_
#define FEDSIM_SIM_RUN_OBSERVER_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "algorithms/algorithm.h"
#include "algorithms/types.h"
#include "core/model_ref.h"
#include "proto/checkpoint.pb.h"

namespace fedsim {

struct TaskRecord {
  TaskId id = 0;
  ClientId client = 0;
  ModelRef base;  // the model it trained from
  VirtualTime start = 0;
  double duration = 0;  // scripted (virtual) duration
  uint64_t seed = 0;
};

// The columns every run's metrics.csv starts with, in this order. Evaluator
// figures (robust accuracy, ...), the per-client sample of decentralized
// rules and each rule's own figures follow (Engine::MetricColumns).
inline const std::vector<std::string>& BaseMetricColumns() {
  static const auto* columns = new std::vector<std::string>{
      "virtual_time", "version",  "updates_applied", "updates_dropped", "test_loss",
      "test_accuracy", "bytes_down", "bytes_up",      "mean_staleness",  "max_staleness"};
  return *columns;
}

// One metrics.csv row: named figures, every one a deterministic function of
// the scenario (wall-clock time goes to timing.csv, see run_output.h). A
// column without a value in a row is written empty.
struct MetricsRow {
  VirtualTime virtual_time = 0;
  Version version = 0;
  MetricValues values;  // by column name; virtual_time and version included
  double wall_s = 0;    // not deterministic: only timing.csv prints it

  // values[name], or `fallback` when absent.
  double Get(const std::string& name, double fallback = 0) const {
    auto it = values.find(name);
    return it == values.end() ? fallback : it->second;
  }
};

struct RunSummary {
  Version final_version = 0;
  VirtualTime virtual_time = 0;
  double wall_s = 0;
  uint64_t updates_applied = 0;
  uint64_t updates_dropped = 0;
  uint64_t tasks_dispatched = 0;
  double final_accuracy = 0;
  double final_loss = 0;
  std::string stop_reason;
  std::string final_model_hash;  // sha256 of the float32 bytes
};

class RunObserver {
 public:
  virtual ~RunObserver() = default;
  // Before anything else: the metrics columns of this run, in order.
  virtual void OnStart(const std::vector<std::string>& metric_columns) { (void)metric_columns; }
  virtual void OnDispatch(const TaskRecord& task) { (void)task; }
  // `verdict` is OK when the algorithm accepted the update, else why it was dropped.
  virtual void OnArrival(const TaskRecord& task, VirtualTime t, uint64_t staleness,
                         const absl::Status& verdict) {
    (void)task, (void)t, (void)staleness, (void)verdict;
  }
  virtual void OnTaskLost(const TaskRecord& task, VirtualTime t, const std::string& why) {
    (void)task, (void)t, (void)why;
  }
  virtual void OnAvailability(VirtualTime t, ClientId client, bool available) {
    (void)t, (void)client, (void)available;
  }
  virtual void OnCommit(VirtualTime t, Version new_version, const CommitResult& result) {
    (void)t, (void)new_version, (void)result;
  }
  virtual void OnEvaluation(const MetricsRow& row) { (void)row; }
  virtual void OnFinish(const RunSummary& summary) { (void)summary; }
  // The engine is about to store a checkpoint: flush what was written so
  // far, and record what a resumed run needs (the output files' lengths).
  virtual void OnCheckpoint(ckpt::EngineState* state) { (void)state; }
};

// Forwards every call to several observers, in order.
class FanOutObserver : public RunObserver {
 public:
  void Add(RunObserver* o) { observers_.push_back(o); }
  void OnStart(const std::vector<std::string>& columns) override {
    for (auto* o : observers_) o->OnStart(columns);
  }
  void OnDispatch(const TaskRecord& task) override {
    for (auto* o : observers_) o->OnDispatch(task);
  }
  void OnArrival(const TaskRecord& task, VirtualTime t, uint64_t staleness,
                 const absl::Status& verdict) override {
    for (auto* o : observers_) o->OnArrival(task, t, staleness, verdict);
  }
  void OnTaskLost(const TaskRecord& task, VirtualTime t, const std::string& why) override {
    for (auto* o : observers_) o->OnTaskLost(task, t, why);
  }
  void OnAvailability(VirtualTime t, ClientId client, bool available) override {
    for (auto* o : observers_) o->OnAvailability(t, client, available);
  }
  void OnCommit(VirtualTime t, Version v, const CommitResult& r) override {
    for (auto* o : observers_) o->OnCommit(t, v, r);
  }
  void OnEvaluation(const MetricsRow& row) override {
    for (auto* o : observers_) o->OnEvaluation(row);
  }
  void OnFinish(const RunSummary& s) override {
    for (auto* o : observers_) o->OnFinish(s);
  }
  void OnCheckpoint(ckpt::EngineState* state) override {
    for (auto* o : observers_) o->OnCheckpoint(state);
  }

 private:
  std::vector<RunObserver*> observers_;
};

}  // namespace fedsim

#endif  // FEDSIM_SIM_RUN_OBSERVER_H_
