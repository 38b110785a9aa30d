#include "sim/checkpoint.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <limits>

#include "absl/strings/str_cat.h"
#include "util/file.h"
#include "util/hash.h"
#include "util/status_macros.h"

namespace fedsim {
namespace {

constexpr char kMagic[] = "FSCKPT01";
constexpr size_t kMagicSize = 8;
constexpr size_t kHashSize = 32;

std::string Errno(const std::string& what, const std::string& path) {
  return absl::StrCat("cannot ", what, " ", path, ": ", std::strerror(errno));
}

std::string HashBytes(const std::string& payload) {
  const std::string hex = Sha256Hex(payload);
  std::string raw(kHashSize, '\0');
  for (size_t i = 0; i < kHashSize; ++i) {
    raw[i] = static_cast<char>(std::stoi(hex.substr(2 * i, 2), nullptr, 16));
  }
  return raw;
}

}  // namespace

absl::Status WriteCheckpoint(const std::string& run_dir, const ckpt::EngineState& state) {
  std::string payload;
  if (!state.SerializeToString(&payload)) {
    return absl::InternalError("checkpoint: the state does not serialize");
  }
  std::string file(kMagic, kMagicSize);
  const uint64_t size = payload.size();
  file.append(reinterpret_cast<const char*>(&size), sizeof(size));
  file += payload;
  file += HashBytes(payload);

  const std::string path = absl::StrCat(run_dir, "/", kCheckpointFile);
  const std::string tmp = path + ".tmp";
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return absl::UnavailableError(Errno("create", tmp));
  if (!WriteAllToFd(fd, file.data(), file.size()) || ::fsync(fd) != 0) {
    const std::string why = Errno("write", tmp);
    ::close(fd);
    ::unlink(tmp.c_str());
    return absl::UnavailableError(absl::StrCat(why, " (the previous checkpoint is kept)"));
  }
  ::close(fd);
  const std::string prev = absl::StrCat(run_dir, "/", kPreviousCheckpointFile);
  if (::access(path.c_str(), F_OK) == 0 && ::rename(path.c_str(), prev.c_str()) != 0) {
    const std::string why = Errno("rename", path);
    ::unlink(tmp.c_str());
    return absl::UnavailableError(why);
  }
  if (::rename(tmp.c_str(), path.c_str()) != 0) return absl::UnavailableError(Errno("rename", tmp));
  // The renames reach the disk with the folder's entry.
  const int dir = ::open(run_dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dir >= 0) {
    ::fsync(dir);
    ::close(dir);
  }
  return absl::OkStatus();
}

absl::StatusOr<ckpt::EngineState> ReadCheckpointFile(const std::string& path) {
  // No size limit of ours: a decentralized run's checkpoint holds every
  // client's model and may well pass a gigabyte.
  FEDSIM_ASSIGN_OR_RETURN(
      const std::string file,
      ReadFileToString(path, {.what = "", .max_bytes = std::numeric_limits<uint64_t>::max()}));
  auto damaged = [&](const std::string& why) {
    return absl::DataLossError(absl::StrCat(path, " is damaged: ", why));
  };
  if (file.size() < kMagicSize + sizeof(uint64_t) + kHashSize ||
      file.compare(0, kMagicSize, kMagic, kMagicSize) != 0) {
    return damaged("it does not start with a checkpoint header");
  }
  uint64_t size = 0;
  std::memcpy(&size, file.data() + kMagicSize, sizeof(size));
  const size_t start = kMagicSize + sizeof(uint64_t);
  if (size != file.size() - start - kHashSize) {
    return damaged(absl::StrCat("it holds ", file.size(), " bytes, its header promises ",
                                start + size + kHashSize, " (truncated?)"));
  }
  const std::string payload = file.substr(start, size);
  if (HashBytes(payload) != file.substr(start + size)) {
    return damaged("its checksum does not match its contents");
  }
  ckpt::EngineState state;
  if (!state.ParseFromString(payload)) return damaged("its contents do not parse");
  return state;
}

absl::StatusOr<LoadedCheckpoint> LoadLatestCheckpoint(const std::string& run_dir) {
  const std::string newest = absl::StrCat(run_dir, "/", kCheckpointFile);
  const std::string previous = absl::StrCat(run_dir, "/", kPreviousCheckpointFile);
  absl::StatusOr<ckpt::EngineState> a = ReadCheckpointFile(newest);
  if (a.ok()) return LoadedCheckpoint{*std::move(a), newest, ""};
  absl::StatusOr<ckpt::EngineState> b = ReadCheckpointFile(previous);
  if (b.ok()) {
    return LoadedCheckpoint{*std::move(b), previous,
                            absl::StrCat(a.status().message(), "; using ", previous)};
  }
  if (absl::IsNotFound(a.status()) && absl::IsNotFound(b.status())) {
    return absl::NotFoundError(
        absl::StrCat(run_dir, " holds no checkpoint (", kCheckpointFile,
                     "): was it written by `fedsim run` or `fedsim server` of this version?"));
  }
  return absl::DataLossError(absl::StrCat("no readable checkpoint in ", run_dir, ": ",
                                          a.status().message(), "; ", b.status().message()));
}

}  // namespace fedsim
