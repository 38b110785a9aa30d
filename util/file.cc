#include "util/file.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cctype>
#include <cerrno>
#include <cstdio>
#include <cstring>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"

namespace fedsim {
namespace {

// The first leading part of `path` that exists and is not a directory (the
// reason for ENOTDIR), or "" when there is none.
std::string FileOnTheWay(const std::string& path) {
  for (size_t slash = path.find('/', 1); slash != std::string::npos;
       slash = path.find('/', slash + 1)) {
    const std::string prefix = path.substr(0, slash);
    struct stat st;
    if (::stat(prefix.c_str(), &st) != 0) return "";
    if (!S_ISDIR(st.st_mode)) return prefix;
  }
  return "";
}

// Closes a file descriptor on every return path.
class FdCloser {
 public:
  explicit FdCloser(int fd) : fd_(fd) {}
  FdCloser(const FdCloser&) = delete;
  FdCloser& operator=(const FdCloser&) = delete;
  ~FdCloser() { ::close(fd_); }

 private:
  int fd_;
};

}  // namespace

std::string ErrnoText(int err) {
  char buf[256];
  // The GNU strerror_r: returns the text (maybe not in buf); thread-safe,
  // unlike strerror.
  std::string text = ::strerror_r(err, buf, sizeof(buf));
  if (text.empty() || absl::StartsWith(text, "Unknown error")) return absl::StrCat("error ", err);
  // "No such file or directory" -> "no such ...", but keep "I/O error" whole.
  if (text.size() > 1 && std::isupper(static_cast<unsigned char>(text[1])) == 0) {
    text[0] = static_cast<char>(std::tolower(static_cast<unsigned char>(text[0])));
  }
  return text;
}

absl::Status FileReadError(const std::string& path, int err, absl::string_view what) {
  const std::string head = absl::StrCat("cannot read ", what, what.empty() ? "" : " ", path, ": ");
  switch (err) {
    case ENOENT:
      return absl::NotFoundError(absl::StrCat(head, ErrnoText(err)));
    case ENOTDIR: {
      const std::string file = FileOnTheWay(path);
      return absl::NotFoundError(absl::StrCat(
          head, ErrnoText(err),
          file.empty() ? "" : absl::StrCat(" (a folder on the way, ", file, ", is a file)")));
    }
    case EISDIR:
      return absl::InvalidArgumentError(absl::StrCat(head, "is a directory, not a file"));
    case EACCES:
    case EPERM:
      return absl::PermissionDeniedError(absl::StrCat(head, ErrnoText(err)));
    default:
      return absl::UnavailableError(absl::StrCat(head, ErrnoText(err)));
  }
}

absl::StatusOr<std::string> ReadFileToString(const std::string& path,
                                             const ReadFileOptions& options) {
  const uint64_t max_bytes = options.max_bytes;
  auto error = [&](int err) { return FileReadError(path, err, options.what); };
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return error(errno);
  FdCloser closer(fd);
  struct stat st;
  if (::fstat(fd, &st) != 0) return error(errno);
  // open(2) takes a directory for reading; say so now rather than at read().
  if (S_ISDIR(st.st_mode)) return error(EISDIR);
  auto too_large = [&]() {
    return absl::InvalidArgumentError(
        absl::StrCat("cannot read ", options.what, options.what.empty() ? "" : " ", path,
                     ": it holds more than ", max_bytes, " bytes; is it the right file?"));
  };
  std::string out;
  if (S_ISREG(st.st_mode)) {
    if (static_cast<uint64_t>(st.st_size) > max_bytes) return too_large();
    out.reserve(static_cast<size_t>(st.st_size));
  }
  char buf[1 << 16];
  while (true) {
    const ssize_t n = ::read(fd, buf, sizeof(buf));
    if (n < 0) {
      if (errno == EINTR) continue;
      return error(errno);
    }
    if (n == 0) break;
    if (out.size() + static_cast<uint64_t>(n) > max_bytes) return too_large();
    out.append(buf, static_cast<size_t>(n));
  }
  return out;
}

std::vector<absl::string_view> TextLines(absl::string_view text) {
  text = SkipByteOrderMark(text);
  std::vector<absl::string_view> lines;
  size_t start = 0;
  while (start < text.size()) {
    size_t nl = text.find('\n', start);
    if (nl == absl::string_view::npos) nl = text.size();
    size_t end = nl;
    if (end > start && text[end - 1] == '\r') --end;
    lines.push_back(text.substr(start, end - start));
    start = nl + 1;
  }
  return lines;
}

absl::Status WriteTextFile(const std::string& path, absl::string_view text) {
  FILE* f = std::fopen(path.c_str(), "wb");
  if (f == nullptr) {
    return absl::PermissionDeniedError(
        absl::StrCat("cannot write ", path, ": ", std::strerror(errno)));
  }
  const bool ok = std::fwrite(text.data(), 1, text.size(), f) == text.size();
  if (std::fclose(f) != 0 || !ok) {
    return absl::DataLossError(absl::StrCat("writing ", path, " failed (disk full?)"));
  }
  return absl::OkStatus();
}

bool WriteAllToFd(int fd, const void* data, size_t size) {
  const char* p = static_cast<const char*>(data);
  while (size > 0) {
    const ssize_t n = ::write(fd, p, size);
    if (n < 0) {
      if (errno == EINTR) continue;
      return false;
    }
    p += n;
    size -= static_cast<size_t>(n);
  }
  return true;
}

}  // namespace fedsim
