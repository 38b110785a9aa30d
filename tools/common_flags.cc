#include "tools/common_flags.h"

#include <limits>

#include "absl/flags/flag.h"
#include "absl/strings/str_split.h"
#include "tools/flag_checks.h"
#include "util/problems.h"

ABSL_FLAG(std::vector<std::string>, set, {},
          "Override a scenario field, e.g. --set=algorithm.fedbuff.buffer_size=20 or "
          "--set=local.lr=0.05; repeat the flag or separate several with commas. Message "
          "fields take text format in braces: --set='partition={dirichlet{alpha:0.1}}'.");

ABSL_FLAG(int, slots, 0,
          "Tasks one worker trains in parallel, one thread each (default 0 = automatic: for "
          "'fedsim client' the number of cores; for 'fedsim run', cores / workers, at least 1, "
          "or with --inprocess the number of cores; for 'fedsim compare', per run, cores / "
          "runs at a time, at least 1).");

ABSL_FLAG(std::string, device, "auto",
          "Where tasks train: cpu, cuda (the first GPU), cuda:N, or emulated (the GPU "
          "backend's arithmetic on the CPU, for checks). Default auto: for 'fedsim run', one "
          "worker per visible GPU when there are GPUs (CPU workers otherwise; --inprocess "
          "stays on the CPU); for 'fedsim client' and 'fedsim train', the CPU. A GPU's "
          "results agree with the CPU's within float tolerance, not bit for bit; the "
          "manifest's 'backends' lists where a run trained. On a GPU, --slots is the number "
          "of clients trained in one batched launch (0 = as many as fit in its memory).");

ABSL_FLAG(bool, accept_worker_mismatch, false,
          "Take workers whose build id or numeric fingerprint differ from the server's (each "
          "is logged as a warning) instead of refusing them. Their results may differ in the "
          "last bits, so the run is no longer reproducible bit for bit.");
ABSL_FLAG(bool, shared_memory, true,
          "Let workers on this machine hand their updates over, and fetch their models, in "
          "shared memory (/dev/shm) instead of the socket: the same bits, less CPU. A worker "
          "falls back to the socket on its own when /dev/shm is missing or full. "
          "--noshared_memory turns it off.");
ABSL_FLAG(std::string, resume, "",
          "Continue the run in this folder (e.g. runs/quickstart) from its newest good "
          "checkpoint instead of starting a new one; no scenario file or --set is given then. "
          "The finished folder is the same as an undisturbed run's.");
ABSL_FLAG(int, checkpoint_every, 20,
          "Write a checkpoint (checkpoint.bin in the run folder) after every N commits (less "
          "often when writing one takes more than 5% of the run's time, e.g. MIFA's memory of "
          "every client's update), and always when the run stops (0 = only when it stops).");

namespace fedsim {

void CheckSlotsFlag(ProblemList* problems) {
  CheckFlagRange("slots", absl::GetFlag(FLAGS_slots), 0, kMaxProcesses,
                 "tasks one worker trains in parallel; 0 = automatic", problems);
}

void CheckCheckpointEveryFlag(ProblemList* problems) {
  CheckFlagRange("checkpoint_every", absl::GetFlag(FLAGS_checkpoint_every), 0,
                 std::numeric_limits<int>::max(),
                 "commits between checkpoints; 0 = only when the run stops", problems);
}

DeviceSpec DeviceFromFlag(const DeviceSpec& auto_means, ProblemList* problems) {
  const std::string value = absl::GetFlag(FLAGS_device);
  if (value == "auto") return auto_means;
  absl::StatusOr<DeviceSpec> device = ParseDeviceSpec(value);
  if (!device.ok()) {
    problems->Add("device", std::string(device.status().message()));
    return DeviceSpec{};
  }
  if (absl::Status s = CheckDevice(*device); !s.ok()) {
    problems->Add("device", std::string(s.message()));
    return DeviceSpec{};
  }
  return *device;
}

// Abseil keeps only the last value of a repeated vector flag, so every --set
// is collected from argv itself (in order); comma-separated values are split
// as the flag would split them.
std::vector<std::string> ScenarioOverrides(int argc, char** argv) {
  std::vector<std::string> values;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg == "--") break;
    std::string value;
    if (arg.rfind("--set=", 0) == 0) {
      value = arg.substr(6);
    } else if (arg.rfind("-set=", 0) == 0) {
      value = arg.substr(5);
    } else if ((arg == "--set" || arg == "-set") && i + 1 < argc) {
      value = argv[++i];
    } else {
      continue;
    }
    for (absl::string_view piece : absl::StrSplit(value, ',')) values.emplace_back(piece);
  }
  if (values.empty()) values = absl::GetFlag(FLAGS_set);
  return values;
}

}  // namespace fedsim
