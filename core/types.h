// The ids and times every layer of fedsim speaks in.
//
// Thread safety: plain values.
#ifndef FEDSIM_CORE_TYPES_H_
#define FEDSIM_CORE_TYPES_H_

#include <cstdint>

namespace fedsim {

// A virtual client 0 .. N-1 (a data partition, a device profile and a
// participation process).
using ClientId = uint32_t;
// One unit of local work, numbered 1, 2, ... in dispatch order.
using TaskId = uint64_t;
// A model's counter: the global model's number of commits, or a client's
// own model's number of updates (see ModelRef).
using Version = uint64_t;
// Seconds on the run's clock (virtual in simulation, since start in wall mode).
using VirtualTime = double;

}  // namespace fedsim

#endif  // FEDSIM_CORE_TYPES_H_
