// LocalSocketDir: where `fedsim run` puts the Unix-domain socket its server
// and its worker processes talk over. On one machine a Unix socket costs less
// per call than TCP on loopback (no TCP state, acknowledgements or checksums
// in the kernel), and a directory only its owner may enter keeps other users
// off it.
//
// Thread safety: not thread-safe; one owner.
#ifndef FEDSIM_TOOLS_LOCAL_SOCKET_H_
#define FEDSIM_TOOLS_LOCAL_SOCKET_H_

#include <string>

#include "absl/status/statusor.h"

namespace fedsim {

class LocalSocketDir {
 public:
  // Makes a fresh directory (mode 0700) under $TMPDIR, or /tmp when $TMPDIR
  // is unset or too long for a socket path. Errors: Unavailable when no
  // directory can be made.
  static absl::StatusOr<LocalSocketDir> Create();

  LocalSocketDir(LocalSocketDir&& other) noexcept;
  LocalSocketDir& operator=(LocalSocketDir&&) = delete;
  LocalSocketDir(const LocalSocketDir&) = delete;
  LocalSocketDir& operator=(const LocalSocketDir&) = delete;
  // Removes the socket file (if the server made it) and the directory.
  ~LocalSocketDir();

  // "unix:DIR/server.sock", for the server to listen on and workers to dial.
  std::string address() const { return "unix:" + socket_path(); }
  std::string socket_path() const { return dir_ + "/server.sock"; }
  const std::string& dir() const { return dir_; }

 private:
  explicit LocalSocketDir(std::string dir) : dir_(std::move(dir)) {}
  std::string dir_;  // empty once moved from
};

}  // namespace fedsim

#endif  // FEDSIM_TOOLS_LOCAL_SOCKET_H_
