// A Transport that trains tasks on threads of this process: `fedsim run
// --inprocess`, tests and benchmarks. No sockets, same engine, same results.
//
// Tasks wait in a queue ordered by (due, id) and run on a ThreadPool of
// `slots` threads, earliest-due first (the engine needs that result next).
// A thread that takes a task of a fold group (core/task.h
// TaskSpec::fold_group) goes on with the group's next tasks while they are
// at the front of the queue, adds their weighted deltas into one exact sum
// and hands the sum over once, shared by those tasks' results
// (TaskResult::folded), as a pre-aggregating worker process does.
//
// Thread safety: thread-safe.
#ifndef FEDSIM_SIM_INPROCESS_TRANSPORT_H_
#define FEDSIM_SIM_INPROCESS_TRANSPORT_H_

#include <memory>

#include "core/clock.h"
#include "core/model_store.h"
#include "core/transport.h"
#include "runtime/task_runner.h"

namespace fedsim {

struct InProcessOptions {
  // Tasks trained in parallel (threads of the pool). Default: 1.
  int slots = 1;
  // Wall-clock emulation: a task's result is handed over no earlier than
  // duration_s * time_scale after its training started. Default: 0 (off).
  double time_scale = 0;
  // Times the emulation and AwaitAny's deadline; must outlive the transport.
  // Default: SystemClock().
  Clock* clock = SystemClock();
  // Threads pre-aggregate fold groups (above), each holding a sum of 8
  // bytes per parameter while it does. Off for GPU slots, which are many
  // (up to 256, each a client of one batched launch): their deltas go to
  // the engine one by one. Default: true.
  bool pre_aggregate = true;
};

// `runner` and `store` must outlive the transport.
std::unique_ptr<Transport> NewInProcessTransport(TaskRunner* runner, ModelStore* store,
                                                 const InProcessOptions& options);

}  // namespace fedsim

#endif  // FEDSIM_SIM_INPROCESS_TRANSPORT_H_
