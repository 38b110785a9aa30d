// Basic ids and records shared by the engine, the algorithms and the transports.
#ifndef FEDSIM_ALGORITHMS_TYPES_H_
#define FEDSIM_ALGORITHMS_TYPES_H_

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "core/types.h"

namespace fedsim {

// One client's local result, decoded and validated by the transport.
struct ClientUpdate {
  TaskId task_id = 0;
  ClientId client = 0;
  Version base_version = 0;   // the global version the task trained from
  uint64_t num_examples = 0;  // n_i: examples the client holds (the weight)
  VirtualTime dispatch_time = 0;
  VirtualTime arrival_time = 0;
  // Filled by the engine: version at arrival - base_version.
  uint64_t staleness = 0;
  std::vector<float> delta;  // local - base
  std::map<std::string, double> metrics;  // "train_loss", "steps", ...
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
