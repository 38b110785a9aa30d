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
#include "algorithms/types.h"

namespace fedsim {

struct TaskRecord {
  TaskId id = 0;
  ClientId client = 0;
  Version base_version = 0;
  VirtualTime start = 0;
  double duration = 0;  // scripted (virtual) duration
  uint64_t seed = 0;
};

// One metrics.csv row. Every field is a deterministic function of the
// scenario (wall-clock figures go to timing.csv, see run_output.h).
struct EvalRow {
  VirtualTime virtual_time = 0;
  Version version = 0;
  uint64_t updates_applied = 0;  // since the start
  uint64_t updates_dropped = 0;  // since the start
  double test_loss = 0;
  double test_accuracy = 0;
  uint64_t bytes_down = 0;  // model bytes sent to clients since the start (logical)
  uint64_t bytes_up = 0;    // update bytes received since the start (logical)
  double mean_staleness = 0;  // over updates applied since the previous row
  uint64_t max_staleness = 0;
  double wall_s = 0;        // not deterministic: only timing.csv prints it
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
  virtual void OnEvaluation(const EvalRow& row) { (void)row; }
  virtual void OnFinish(const RunSummary& summary) { (void)summary; }
};

// Forwards every call to several observers, in order.
class FanOutObserver : public RunObserver {
 public:
  void Add(RunObserver* o) { observers_.push_back(o); }
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
  void OnEvaluation(const EvalRow& row) override {
    for (auto* o : observers_) o->OnEvaluation(row);
  }
  void OnFinish(const RunSummary& s) override {
    for (auto* o : observers_) o->OnFinish(s);
  }

 private:
  std::vector<RunObserver*> observers_;
};

}  // namespace fedsim

#endif  // FEDSIM_SIM_RUN_OBSERVER_H_
