#include "rpc/shm_segment.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cstring>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "rpc/auth.h"

namespace fedsim {
namespace {

std::string PathOf(const std::string& name) { return absl::StrCat(kShmDir, "/", name); }

// The hold word of a slot of a segment made with hold words, given where the
// slot ends: the first 8 bytes of its last kHoldWordFloats floats. Both sides
// find it here. 8-aligned: segments are page-aligned and their slots hold an
// even number of floats (sum slots hold int64 values).
uint64_t* HoldWordOfSlotEnding(float* slot_end) {
  return reinterpret_cast<uint64_t*>(slot_end - kHoldWordFloats);
}

}  // namespace

bool IsUpdateSegmentName(const std::string& name) {
  const size_t prefix = std::strlen(kShmNamePrefix);
  if (name.size() <= prefix || name.size() > prefix + 48 ||
      name.compare(0, prefix, kShmNamePrefix)) {
    return false;
  }
  return std::all_of(name.begin() + prefix, name.end(), [](char c) {
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || c == '-';
  });
}

// ------------------------------------------------------------ UpdateSegment

absl::StatusOr<std::unique_ptr<UpdateSegment>> UpdateSegment::Create(uint64_t num_params,
                                                                     uint32_t slots,
                                                                     bool hold_words) {
  const uint64_t stride = num_params + (hold_words ? kHoldWordFloats : 0);
  if (num_params == 0 || slots == 0 || stride * sizeof(float) > kMaxUpdateSegmentBytes / slots) {
    return absl::ResourceExhaustedError(
        absl::StrCat("a shared-memory segment of ", slots, " updates of ", num_params,
                     " floats would exceed ", kMaxUpdateSegmentBytes >> 20, " MiB"));
  }
  const size_t bytes = static_cast<size_t>(stride * sizeof(float) * slots);
  absl::StatusOr<std::string> random = RandomHex(8);
  if (!random.ok()) return random.status();
  const std::string name = absl::StrCat(kShmNamePrefix, absl::Hex(::getpid()), "-", *random);
  const std::string path = PathOf(name);
  const int fd = ::open(path.c_str(), O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
  if (fd < 0) {
    return absl::UnavailableError(absl::StrCat("cannot create ", path, ": ", std::strerror(errno)));
  }
  // Reserve the pages now: writing into a tmpfs hole with no room left would
  // kill the worker with SIGBUS. MAP_POPULATE maps them all in one call, so
  // the first pushes do not take a page fault per 4 KiB (about 12 us each on
  // a virtual machine, 5 ms for one 1.6 MB sum).
  const int reserved = ::posix_fallocate(fd, 0, static_cast<off_t>(bytes));
  void* base = reserved == 0 ? ::mmap(nullptr, bytes, PROT_READ | PROT_WRITE,
                                      MAP_SHARED | MAP_POPULATE, fd, 0)
                             : MAP_FAILED;
  const int err = reserved != 0 ? reserved : errno;
  ::close(fd);
  if (base == MAP_FAILED) {
    ::unlink(path.c_str());
    const std::string why =
        absl::StrCat("cannot reserve ", bytes >> 20, " MiB in ", kShmDir, ": ", std::strerror(err));
    return err == ENOSPC ? absl::ResourceExhaustedError(why) : absl::UnavailableError(why);
  }
  return std::unique_ptr<UpdateSegment>(
      new UpdateSegment(name, static_cast<float*>(base), num_params, slots, hold_words));
}

UpdateSegment::UpdateSegment(std::string name, float* base, uint64_t num_params, uint32_t slots,
                             bool hold_words)
    : name_(std::move(name)),
      base_(base),
      num_params_(num_params),
      slots_(slots),
      hold_words_(hold_words),
      stride_(num_params + (hold_words ? kHoldWordFloats : 0)),
      retired_(slots, false) {
  for (uint32_t s = slots; s >= 1; --s) free_.push_back(s);  // hands out 1 first
}

UpdateSegment::~UpdateSegment() {
  ::munmap(base_, static_cast<size_t>(stride_ * sizeof(float) * slots_));
  ::unlink(PathOf(name_).c_str());  // ENOENT once the server took it
}

uint64_t* UpdateSegment::HoldWord(uint32_t slot) const {
  return HoldWordOfSlotEnding(base_ + slot * stride_);
}

std::optional<uint32_t> UpdateSegment::Acquire() {
  absl::MutexLock lock(&mu_);
  // The most recently released first (its pages are the warmest), skipping
  // those the server still reads.
  for (auto it = free_.rbegin(); it != free_.rend(); ++it) {
    if (held(*it)) continue;
    const uint32_t slot = *it;
    free_.erase(std::next(it).base());
    return slot;
  }
  return std::nullopt;
}

std::span<float> UpdateSegment::Slot(uint32_t slot) {
  return {base_ + (slot - 1) * stride_, static_cast<size_t>(num_params_)};
}

void UpdateSegment::Hold(uint32_t slot) {
  if (!hold_words_) return;
  // The push's system call orders it before the server's first look.
  std::atomic_ref<uint64_t>(*HoldWord(slot)).store(1, std::memory_order_relaxed);
}

bool UpdateSegment::held(uint32_t slot) const {
  // Acquire: the server's reads of the slot happen before a cleared word
  // is seen here, so the next writes into the slot come after them.
  return hold_words_ &&
         std::atomic_ref<uint64_t>(*HoldWord(slot)).load(std::memory_order_acquire) != 0;
}

void UpdateSegment::Release(uint32_t slot) {
  absl::MutexLock lock(&mu_);
  if (!retired_[slot - 1]) free_.push_back(slot);
}

void UpdateSegment::Retire(uint32_t slot) {
  absl::MutexLock lock(&mu_);
  retired_[slot - 1] = true;  // never handed back to free_
}

bool UpdateSegment::retired(uint32_t slot) {
  absl::MutexLock lock(&mu_);
  return retired_[slot - 1];
}

// ------------------------------------------------------ MappedUpdateSegment

absl::StatusOr<std::shared_ptr<const MappedUpdateSegment>> MappedUpdateSegment::Open(
    const std::string& name, uint64_t num_params, Access access) {
  const bool writable = access == Access::kReadWrite;
  if (!IsUpdateSegmentName(name)) {
    return absl::InvalidArgumentError(
        absl::StrCat(kShmRefused, "'", name, "' is not a segment name"));
  }
  const std::string path = PathOf(name);
  const int fd = ::open(path.c_str(), (writable ? O_RDWR : O_RDONLY) | O_CLOEXEC | O_NOFOLLOW);
  if (fd < 0) {
    return absl::FailedPreconditionError(absl::StrCat(kShmRefused, "cannot open ", path, " (",
                                                      std::strerror(errno),
                                                      "); is the worker on another machine?"));
  }
  struct stat st;
  const uint64_t slot_bytes = num_params * sizeof(float);
  const bool stat_ok = ::fstat(fd, &st) == 0;
  const uint64_t size = stat_ok ? static_cast<uint64_t>(st.st_size) : 0;
  if (!stat_ok || !S_ISREG(st.st_mode) || slot_bytes == 0 || size == 0 || size % slot_bytes != 0 ||
      size > kMaxUpdateSegmentBytes) {
    ::close(fd);
    return absl::FailedPreconditionError(
        absl::StrCat(kShmRefused, path, " is not a segment of ", num_params, "-float slots"));
  }
  // Populated at once, like the worker's side: the first read of a slot
  // then takes no page faults.
  void* base =
      ::mmap(nullptr, static_cast<size_t>(size), writable ? PROT_READ | PROT_WRITE : PROT_READ,
             MAP_SHARED | MAP_POPULATE, fd, 0);
  const int err = errno;
  ::close(fd);
  if (base == MAP_FAILED) {
    return absl::FailedPreconditionError(
        absl::StrCat(kShmRefused, "cannot map ", path, ": ", std::strerror(err)));
  }
  ::unlink(path.c_str());  // both sides hold it now; nothing to clean up later
  return std::shared_ptr<const MappedUpdateSegment>(
      new MappedUpdateSegment(name, static_cast<float*>(base), static_cast<size_t>(size),
                              num_params, static_cast<uint32_t>(size / slot_bytes), writable));
}

MappedUpdateSegment::MappedUpdateSegment(std::string name, float* base, size_t bytes,
                                         uint64_t num_params, uint32_t slots, bool writable)
    : name_(std::move(name)),
      base_(base),
      writable_(writable),
      bytes_(bytes),
      num_params_(num_params),
      slots_(slots) {}

MappedUpdateSegment::~MappedUpdateSegment() { ::munmap(base_, bytes_); }

absl::Status MappedUpdateSegment::ClearHold(uint32_t slot) const {
  if (!writable_) {
    return absl::FailedPreconditionError(absl::StrCat("segment ", name_, " is mapped read-only"));
  }
  if (slot < 1 || slot > slots_ || num_params_ < kHoldWordFloats) {
    return absl::InvalidArgumentError(
        absl::StrCat("no hold word for slot ", slot, " of ", slots_, " in ", name_));
  }
  uint64_t* word = HoldWordOfSlotEnding(base_ + slot * num_params_);
  // Release: this process's reads of the slot come before the worker sees 0.
  std::atomic_ref<uint64_t>(*word).store(0, std::memory_order_release);
  return absl::OkStatus();
}

absl::Status MappedUpdateSegment::WriteSlot(uint32_t slot, std::span<const float> values) const {
  if (!writable_) {
    return absl::FailedPreconditionError(absl::StrCat("segment ", name_, " is mapped read-only"));
  }
  if (slot < 1 || slot > slots_ || values.size() != num_params_) {
    return absl::InvalidArgumentError(absl::StrCat("cannot write ", values.size(),
                                                   " floats into slot ", slot, " of ", slots_,
                                                   " slots of ", num_params_, " in ", name_));
  }
  std::memcpy(base_ + (slot - 1) * num_params_, values.data(), values.size() * sizeof(float));
  return absl::OkStatus();
}

void MappedUpdateSegment::CopySlot(uint32_t slot, std::vector<float>* out) const {
  const float* src = base_ + (slot - 1) * num_params_;
  out->assign(src, src + num_params_);  // no zero-fill first, unlike resize + copy
}

}  // namespace fedsim
