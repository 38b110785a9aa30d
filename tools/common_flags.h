// Flags shared by several subcommands (Abseil flags are process-global, so a
// flag used by two commands is defined once, here).
#ifndef FEDSIM_TOOLS_COMMON_FLAGS_H_
#define FEDSIM_TOOLS_COMMON_FLAGS_H_

#include <string>
#include <vector>

#include "absl/flags/declare.h"
#include "ml/gpu/device.h"

// --set path.to.field=value, repeatable: overrides a scenario field.
ABSL_DECLARE_FLAG(std::vector<std::string>, set);

// --slots: tasks one worker trains in parallel (0 = automatic).
ABSL_DECLARE_FLAG(int, slots);

// --device: cpu, cuda, cuda:N, emulated or auto (DeviceFromFlag).
ABSL_DECLARE_FLAG(std::string, device);

// --accept_worker_mismatch: `fedsim server` and `fedsim run` take workers of
// another build or numeric mode (GrpcServerOptions::accept_mismatched_workers).
ABSL_DECLARE_FLAG(bool, accept_worker_mismatch);
// --shared_memory: `fedsim server` and `fedsim run` offer same-machine
// workers shared-memory updates (GrpcServerOptions::shared_memory_updates).
ABSL_DECLARE_FLAG(bool, shared_memory);

// --resume=RUN_DIR and --checkpoint_every=N: `fedsim run` and `fedsim server`
// continue a run from its folder's checkpoint; checkpoints every N commits.
ABSL_DECLARE_FLAG(std::string, resume);
ABSL_DECLARE_FLAG(int, checkpoint_every);

namespace fedsim {

class ProblemList;

// Range checks of the shared flags (tools/flag_checks.h): --slots from 0 to
// kMaxProcesses, --checkpoint_every >= 0.
void CheckSlotsFlag(ProblemList* problems);
void CheckCheckpointEveryFlag(ProblemList* problems);

// --device as a DeviceSpec, with "auto" meaning `auto_means`; a problem
// under "device" (and the CPU) for a value ParseDeviceSpec refuses or a
// device CheckDevice refuses.
DeviceSpec DeviceFromFlag(const DeviceSpec& auto_means, ProblemList* problems);

// Every --set value on the command line, in order (all occurrences, not only
// the last one as absl::GetFlag would give). Call before absl::ParseCommandLine.
std::vector<std::string> ScenarioOverrides(int argc, char** argv);
}  // namespace fedsim

#endif  // FEDSIM_TOOLS_COMMON_FLAGS_H_
