#include "tools/local_socket.h"

#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <utility>

#include "absl/strings/str_cat.h"
#include "rpc/auth.h"

namespace fedsim {

absl::StatusOr<LocalSocketDir> LocalSocketDir::Create() {
  constexpr char kPattern[] = "/fedsim-XXXXXX";
  constexpr char kSocket[] = "/server.sock";
  std::string base = "/tmp";
  if (const char* tmp = std::getenv("TMPDIR");
      tmp != nullptr && tmp[0] == '/' &&
      std::strlen(tmp) + sizeof(kPattern) + sizeof(kSocket) <= kMaxUnixSocketPath) {
    base = tmp;
  }
  std::string dir = base + kPattern;
  if (mkdtemp(dir.data()) == nullptr) {  // mkdtemp makes it 0700
    return absl::UnavailableError(absl::StrCat(
        "cannot make a directory for the local socket under ", base, ": ", std::strerror(errno)));
  }
  return LocalSocketDir(std::move(dir));
}

LocalSocketDir::LocalSocketDir(LocalSocketDir&& other) noexcept
    : dir_(std::exchange(other.dir_, std::string())) {}

LocalSocketDir::~LocalSocketDir() {
  if (dir_.empty()) return;
  unlink(socket_path().c_str());
  rmdir(dir_.c_str());
}

}  // namespace fedsim
