// Reads memory that a process will need soon, on a thread that runs only
// when a core would otherwise be idle.
//
// A forked worker shares the training set its parent mapped (a read-only
// file mapping), but a new process starts without page-table entries for
// it: its first read of each page faults, and on a virtual machine a fault
// costs 11-14 us. On the pfl recipe that was about 22 ms of CPU per worker,
// spent inside its first tasks, where the round waits for it. A PageWarmer
// takes those faults at SCHED_IDLE priority while the worker waits for the
// server's address or for a slower peer, so that its tasks find the pages
// mapped. Reading changes nothing: results are the same with or without it.
//
// Thread safety: construct, stop and destroy from one thread; pages_read()
// may be called from any thread.
#ifndef FEDSIM_UTIL_PAGE_WARMER_H_
#define FEDSIM_UTIL_PAGE_WARMER_H_

#include <atomic>
#include <cstddef>
#include <span>
#include <thread>
#include <vector>

namespace fedsim {

class PageWarmer {
 public:
  // Starts a thread that reads one byte in every 4 KiB of each range, in
  // order, 2 MiB at a time, each chunk first mapped in one call (madvise
  // MADV_POPULATE_READ, where the kernel has it), at SCHED_IDLE priority
  // (at normal priority where the system refuses SCHED_IDLE). The ranges
  // must stay mapped and readable until Stop() or the destructor returns.
  // Empty ranges are skipped; no thread starts when every range is empty.
  explicit PageWarmer(std::vector<std::span<const std::byte>> ranges);
  // Stops the reading where it is (within one page, or one chunk's mapping
  // call) and joins the thread.
  ~PageWarmer();
  PageWarmer(const PageWarmer&) = delete;
  PageWarmer& operator=(const PageWarmer&) = delete;

  // Same as the destructor, earlier; idempotent.
  void Stop();
  // Blocks until every page was read or Stop() was called. For tests.
  void Wait();

  // Pages read so far (of every range together).
  size_t pages_read() const { return pages_read_.load(std::memory_order_relaxed); }
  // Pages the ranges span (4 KiB steps from each range's start).
  size_t pages_total() const { return pages_total_; }
  // Whether the thread got SCHED_IDLE; false before it started and when
  // there is no thread. For tests.
  bool idle_priority() const { return idle_priority_.load(std::memory_order_acquire); }

 private:
  void Run();

  const std::vector<std::span<const std::byte>> ranges_;
  size_t pages_total_ = 0;
  std::atomic<bool> stop_{false};
  std::atomic<size_t> pages_read_{0};
  std::atomic<bool> idle_priority_{false};
  std::thread thread_;
};

}  // namespace fedsim

#endif  // FEDSIM_UTIL_PAGE_WARMER_H_
