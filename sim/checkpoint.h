// Checkpoint files of a run folder: the engine's state (proto/checkpoint.proto)
// written so that a crash at any moment leaves a readable checkpoint.
//
// Layout of runs/<name>/checkpoint.bin (and checkpoint.prev.bin, the one
// before): "FSCKPT01", u64 payload length, the serialized ckpt::EngineState,
// then the SHA-256 of the payload (32 bytes). A new checkpoint is written to
// checkpoint.bin.tmp, fsynced, the current file becomes checkpoint.prev.bin,
// and the temporary file is renamed into place; the folder is fsynced too.
//
// Thread safety: functions on one run folder must not run concurrently.
#ifndef FEDSIM_SIM_CHECKPOINT_H_
#define FEDSIM_SIM_CHECKPOINT_H_

#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "proto/checkpoint.pb.h"

namespace fedsim {

inline constexpr char kCheckpointFile[] = "checkpoint.bin";
inline constexpr char kPreviousCheckpointFile[] = "checkpoint.prev.bin";

// Writes `state` as the run folder's newest checkpoint (see the file comment).
// Errors name the file and why (a full disk, a read-only folder); the
// previous good checkpoint is left as it was.
absl::Status WriteCheckpoint(const std::string& run_dir, const ckpt::EngineState& state);

// Reads one checkpoint file. NotFound when absent; DataLoss naming the file
// when it is truncated, its checksum is wrong or it does not parse.
absl::StatusOr<ckpt::EngineState> ReadCheckpointFile(const std::string& path);

struct LoadedCheckpoint {
  ckpt::EngineState state;
  std::string path;  // the file it came from
  // Set when the newest file was damaged and the previous one was used:
  // what was wrong with the newest.
  std::string warning;
};

// The newest good checkpoint of a run folder: checkpoint.bin, or, when that
// is missing or damaged, checkpoint.prev.bin (with a warning saying why).
// NotFound (naming the folder) when the folder holds no checkpoint; DataLoss
// naming both files and what is wrong with each when neither can be read.
absl::StatusOr<LoadedCheckpoint> LoadLatestCheckpoint(const std::string& run_dir);

}  // namespace fedsim

#endif  // FEDSIM_SIM_CHECKPOINT_H_
