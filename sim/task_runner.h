// Executes TaskSpecs against the data of a run: the code shared by the
// in-process transport and the worker process (client/), so both compute the
// bit-identical result for a task.
//
// Thread-safe: Run() may be called from many threads at once; each call uses
// a Model instance of its own (models keep scratch workspaces).
#ifndef FEDSIM_SIM_TASK_RUNNER_H_
#define FEDSIM_SIM_TASK_RUNNER_H_

#include <memory>
#include <mutex>
#include <span>
#include <vector>

#include "absl/status/statusor.h"
#include "ml/model.h"
#include "sim/run_setup.h"
#include "core/task.h"

namespace fedsim {

class TaskRunner {
 public:
  // `data` must outlive the runner.
  explicit TaskRunner(const RunData* data) : data_(data) {}

  // Trains task.client's rows from `base`; InvalidArgument for an unknown
  // client or a base of the wrong size.
  absl::StatusOr<TaskResult> Run(const TaskSpec& task, std::span<const float> base);

 private:
  absl::StatusOr<std::unique_ptr<Model>> AcquireModel();
  void ReleaseModel(std::unique_ptr<Model> model);

  const RunData* data_;
  std::mutex mu_;
  std::vector<std::unique_ptr<Model>> free_models_;  // guarded by mu_
};

}  // namespace fedsim

#endif  // FEDSIM_SIM_TASK_RUNNER_H_
