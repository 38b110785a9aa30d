// Records shared by the engine and the algorithms: decoded updates and what a
// commit applied. Ids and times come from core/types.h.
#ifndef FEDSIM_ALGORITHMS_TYPES_H_
#define FEDSIM_ALGORITHMS_TYPES_H_

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "core/model_ref.h"
#include "core/task.h"
#include "core/types.h"

namespace fedsim {

// One client's local result, decoded and validated by the transport.
struct ClientUpdate {
  TaskId task_id = 0;
  ClientId client = 0;
  // The model the task trained from (base.version is the global version it
  // trained from for server-based rules).
  ModelRef base;
  uint64_t num_examples = 0;  // n_i: examples the client holds (the weight)
  VirtualTime dispatch_time = 0;
  VirtualTime arrival_time = 0;
  // Filled by the engine: global version at arrival - base.version for a
  // global base; 0 for a client base.
  uint64_t staleness = 0;
  std::vector<float> delta;               // local - base; empty when `folded` is set
  std::map<std::string, double> metrics;  // "train_loss", "steps", ...
  // A pre-aggregated delta (core/task.h FoldedSum): this task's weighted
  // delta is in folded->sum, with those of folded->tasks. Only tasks
  // dispatched with Dispatch::fold_weight come back this way.
  std::shared_ptr<const FoldedSum> folded;
};

// What the engine logs for every update an algorithm folded into the model.
struct AppliedUpdate {
  TaskId task_id = 0;
  ClientId client = 0;
  uint64_t staleness = 0;
  double weight = 0;  // the effective coefficient on delta (eta_g included)
};

struct CommitResult {
  std::vector<AppliedUpdate> applied;
};

}  // namespace fedsim

#endif  // FEDSIM_ALGORITHMS_TYPES_H_
