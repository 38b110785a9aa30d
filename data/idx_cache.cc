#include "data/idx_cache.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <memory>
#include <string_view>
#include <vector>

#include "absl/strings/str_cat.h"
#include "util/file.h"
#include "util/hash.h"

namespace fedsim {

std::optional<std::string> IdxCacheDir() {
  if (const char* dir = std::getenv("FEDSIM_CACHE_DIR"); dir != nullptr) {
    const std::string_view v(dir);
    if (v.empty() || v == "off") return std::nullopt;
    return std::string(v);
  }
  if (const char* xdg = std::getenv("XDG_CACHE_HOME"); xdg != nullptr && *xdg == '/') {
    return absl::StrCat(xdg, "/fedsim");
  }
  if (const char* home = std::getenv("HOME"); home != nullptr && *home == '/') {
    return absl::StrCat(home, "/.cache/fedsim");
  }
  return std::nullopt;
}

std::optional<std::string> IdxCachePath(const std::string& dir, const std::string& source) {
  struct stat st;
  if (::stat(source.c_str(), &st) != 0) return std::nullopt;
  std::error_code ec;
  const std::filesystem::path abs = std::filesystem::absolute(source, ec);
  if (ec) return std::nullopt;
  Sha256 key;
  key.Update(abs.string());
  const uint64_t identity[] = {static_cast<uint64_t>(st.st_size),
                               static_cast<uint64_t>(st.st_mtim.tv_sec),
                               static_cast<uint64_t>(st.st_mtim.tv_nsec),
                               static_cast<uint64_t>(st.st_ino), static_cast<uint64_t>(st.st_dev)};
  key.Update(identity, sizeof(identity));
  std::string name = abs.filename().string();
  if (name.size() > 3 && name.ends_with(".gz")) name.resize(name.size() - 3);
  return absl::StrCat(dir, "/", name, "-", key.FinishHex().substr(0, 16));
}

bool IsGzipFile(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return false;
  unsigned char magic[2] = {0, 0};
  const ssize_t got = ::read(fd, magic, 2);
  ::close(fd);
  return got == 2 && magic[0] == 0x1f && magic[1] == 0x8b;
}

bool WriteIdxCacheFile(const std::string& path, const IdxArray& array) {
  std::error_code ec;
  const std::filesystem::path target(path);
  std::filesystem::create_directories(target.parent_path(), ec);
  if (ec) return false;
  // Unique among the processes and threads that may write the same copy.
  static std::atomic<uint64_t> counter{0};
  const std::string tmp = absl::StrCat(path, ".tmp.", ::getpid(), ".", counter.fetch_add(1));
  const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
  if (fd < 0) return false;
  std::vector<uint8_t> header = {0, 0, array.type_code, static_cast<uint8_t>(array.dims.size())};
  for (uint32_t d : array.dims) {
    header.push_back(static_cast<uint8_t>(d >> 24));
    header.push_back(static_cast<uint8_t>(d >> 16));
    header.push_back(static_cast<uint8_t>(d >> 8));
    header.push_back(static_cast<uint8_t>(d));
  }
  bool ok = WriteAllToFd(fd, header.data(), header.size()) &&
            WriteAllToFd(fd, array.data.data(), array.data.size());
  ok = (::close(fd) == 0) && ok;
  if (ok) ok = ::rename(tmp.c_str(), path.c_str()) == 0;
  if (!ok) ::unlink(tmp.c_str());
  return ok;
}

std::optional<IdxBytes> MapIdxCacheFile(const std::string& path) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return std::nullopt;
  struct stat st;
  const bool stat_ok = ::fstat(fd, &st) == 0 && S_ISREG(st.st_mode) && st.st_size >= 4;
  void* base = stat_ok ? ::mmap(nullptr, static_cast<size_t>(st.st_size), PROT_READ,
                                MAP_PRIVATE | MAP_POPULATE, fd, 0)
                       : MAP_FAILED;
  ::close(fd);  // the mapping stays
  if (base == MAP_FAILED) return std::nullopt;
  const size_t size = static_cast<size_t>(st.st_size);
  std::shared_ptr<const void> owner(
      base, [size](const void* p) { ::munmap(const_cast<void*>(p), size); });
  const uint8_t* b = static_cast<const uint8_t*>(base);
  const size_t ndims = b[3];
  if (b[0] != 0 || b[1] != 0 || b[2] != 0x08 || ndims == 0 || size < 4 + 4 * ndims) {
    return std::nullopt;
  }
  IdxBytes out;
  const size_t body = size - 4 - 4 * ndims;
  uint64_t expected = 1;
  for (size_t i = 0; i < ndims; ++i) {
    const uint8_t* d = b + 4 + 4 * i;
    const uint32_t dim =
        (uint32_t{d[0]} << 24) | (uint32_t{d[1]} << 16) | (uint32_t{d[2]} << 8) | uint32_t{d[3]};
    out.dims.push_back(dim);
    expected *= dim;  // each factor < 2^32, and stopped once past the body
    if (expected > body) return std::nullopt;
  }
  if (expected != body) return std::nullopt;
  out.data = std::span<const uint8_t>(b + 4 + 4 * ndims, body);
  out.owner = std::move(owner);
  return out;
}

}  // namespace fedsim
