// A Transport that trains tasks on threads of this process: `fedsim run
// --inprocess`, tests and benchmarks. No sockets, same engine, same results.
#ifndef FEDSIM_SIM_INPROCESS_TRANSPORT_H_
#define FEDSIM_SIM_INPROCESS_TRANSPORT_H_

#include <memory>

#include "runtime/task_runner.h"
#include "core/model_store.h"
#include "core/transport.h"

namespace fedsim {

struct InProcessOptions {
  // Default: 1. Tasks trained in parallel (one thread each).
  int slots = 1;
  // Default: 0. Wall-clock emulation: sleep duration_s * time_scale per task.
  double time_scale = 0;
};

// `runner` and `store` must outlive the transport. Thread-safe.
std::unique_ptr<Transport> NewInProcessTransport(TaskRunner* runner, ModelStore* store,
                                                 const InProcessOptions& options);

}  // namespace fedsim

#endif  // FEDSIM_SIM_INPROCESS_TRANSPORT_H_
