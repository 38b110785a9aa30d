#include "util/page_warmer.h"

#include <pthread.h>
#include <sched.h>
#include <sys/mman.h>

#include <algorithm>
#include <cstdint>
#include <utility>

namespace fedsim {
namespace {

constexpr size_t kPageBytes = 4096;
// Mapped per madvise call: a Stop waits for at most one such call.
constexpr size_t kChunkBytes = size_t{2} << 20;

#ifndef MADV_POPULATE_READ
#define MADV_POPULATE_READ 22  // Linux 5.14
#endif

// Asks the kernel to map [p, p + bytes) in one call instead of a fault per
// page group. Best effort: an older kernel refuses (EINVAL) and the reads
// that follow fault as before.
void Populate(const std::byte* p, size_t bytes) {
  const auto start = reinterpret_cast<uintptr_t>(p) & ~uintptr_t{kPageBytes - 1};
  const uintptr_t end = reinterpret_cast<uintptr_t>(p) + bytes;
  (void)madvise(reinterpret_cast<void*>(start), end - start, MADV_POPULATE_READ);
}

}  // namespace

PageWarmer::PageWarmer(std::vector<std::span<const std::byte>> ranges)
    : ranges_(std::move(ranges)) {
  for (const auto& r : ranges_) pages_total_ += (r.size() + kPageBytes - 1) / kPageBytes;
  if (pages_total_ > 0) thread_ = std::thread([this] { Run(); });
}

PageWarmer::~PageWarmer() { Stop(); }

void PageWarmer::Stop() {
  stop_.store(true, std::memory_order_relaxed);
  if (thread_.joinable()) thread_.join();
}

void PageWarmer::Wait() {
  if (thread_.joinable()) thread_.join();
}

void PageWarmer::Run() {
  // SCHED_IDLE: the scheduler runs this thread only when a core has nothing
  // else to run, so the reading never delays the work it prepares for.
  sched_param param{};
  if (pthread_setschedparam(pthread_self(), SCHED_IDLE, &param) == 0) {
    idle_priority_.store(true, std::memory_order_release);
  }
  // Mapping a chunk in one call costs less than faulting it page group by
  // page group; each page is still read, because a virtual machine may fill
  // its own page tables only at the first access. A forked child reading
  // the pfl recipe's 47 MB of training images: 25-34 ms by reads alone,
  // 20.5-21 ms mapped first (2 ms) and then read. The read is volatile, so
  // that the compiler keeps it, and nothing is written (the pages may be a
  // read-only mapping shared with other processes).
  size_t read = 0;
  for (const auto& r : ranges_) {
    const volatile std::byte* p = r.data();
    for (size_t chunk = 0; chunk < r.size(); chunk += kChunkBytes) {
      if (stop_.load(std::memory_order_relaxed)) return;
      const size_t chunk_end = std::min(r.size(), chunk + kChunkBytes);
      Populate(r.data() + chunk, chunk_end - chunk);
      for (size_t at = chunk; at < chunk_end; at += kPageBytes) {
        if (stop_.load(std::memory_order_relaxed)) return;
        (void)p[at];
        pages_read_.store(++read, std::memory_order_relaxed);
      }
    }
  }
}

}  // namespace fedsim
