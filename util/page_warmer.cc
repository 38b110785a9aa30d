#include "util/page_warmer.h"

#include <pthread.h>
#include <sched.h>

#include <utility>

namespace fedsim {
namespace {

constexpr size_t kPageBytes = 4096;

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
  // A volatile read per page: the compiler may not drop it, and nothing is
  // written (the pages may be a read-only mapping shared with other
  // processes).
  size_t read = 0;
  for (const auto& r : ranges_) {
    const volatile std::byte* p = r.data();
    for (size_t at = 0; at < r.size(); at += kPageBytes) {
      if (stop_.load(std::memory_order_relaxed)) return;
      (void)p[at];
      pages_read_.store(++read, std::memory_order_relaxed);
    }
  }
}

}  // namespace fedsim
