// Shared pieces of the libFuzzer targets of tests/fuzz/ (docs/fuzzing.md).
//
// Every target defines LLVMFuzzerTestOneInput; it is linked either with
// libFuzzer (FEDSIM_FUZZ=ON, scripts/fuzz) or with replay_main.cc, which runs
// every file of the target's seed corpus through it as a ctest entry, so an
// input that once crashed stays a regression test in the normal build.
//
// A target returns 0 for any input; a bug is a crash, a sanitizer report, or
// a broken invariant, which FUZZ_CHECK turns into an abort with a message.
//
// Thread safety: a target is called from one thread at a time.
#ifndef FEDSIM_TESTS_FUZZ_FUZZ_UTIL_H_
#define FEDSIM_TESTS_FUZZ_FUZZ_UTIL_H_

#include <sys/mman.h>
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <string_view>

// Aborts with the condition and the place when it does not hold.
#define FUZZ_CHECK(cond)                                                            \
  do {                                                                              \
    if (!(cond)) {                                                                  \
      std::fprintf(stderr, "%s:%d: FUZZ_CHECK failed: %s\n", __FILE__, __LINE__, #cond); \
      std::abort();                                                                 \
    }                                                                               \
  } while (0)

namespace fedsim::fuzz {

// A file that exists only in memory (memfd), for readers that take a path:
// path() names it ("/proc/self/fd/N") for as long as the object lives. The
// readers under test open it like any other file, so their real file code
// runs, and no disk is touched per input.
class MemFile {
 public:
  explicit MemFile(std::string_view contents) : fd_(memfd_create("fedsim-fuzz", MFD_CLOEXEC)) {
    FUZZ_CHECK(fd_ >= 0);
    size_t done = 0;
    while (done < contents.size()) {
      const ssize_t n = write(fd_, contents.data() + done, contents.size() - done);
      FUZZ_CHECK(n > 0);
      done += static_cast<size_t>(n);
    }
    path_ = "/proc/self/fd/" + std::to_string(fd_);
  }
  MemFile(const MemFile&) = delete;
  MemFile& operator=(const MemFile&) = delete;
  ~MemFile() { close(fd_); }

  const std::string& path() const { return path_; }

 private:
  int fd_;
  std::string path_;
};

inline std::string AsString(const uint8_t* data, size_t size) {
  return std::string(reinterpret_cast<const char*>(data), size);
}

}  // namespace fedsim::fuzz

#endif  // FEDSIM_TESTS_FUZZ_FUZZ_UTIL_H_
