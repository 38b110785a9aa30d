// ThreadPool: a fixed set of threads running closures in FIFO order. The one
// threading scheme of fedsim: the in-process transport trains tasks on it,
// the worker process trains its leased tasks on it, and the evaluator scores
// test-set chunks on it.
//
// Closures run in the order they were scheduled (a closure may still finish
// after a later one: they run in parallel). Results must never depend on
// which thread runs what; callers that need a fixed order (the evaluator's
// sums) write each closure's result into its own slot and combine the slots
// in a fixed order afterwards.
//
// Thread safety: thread-safe. Schedule() may be called from any thread,
// including from a closure running on the pool.
#ifndef FEDSIM_UTIL_THREAD_POOL_H_
#define FEDSIM_UTIL_THREAD_POOL_H_

#include <cstddef>
#include <deque>
#include <functional>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/functional/function_ref.h"
#include "absl/synchronization/mutex.h"

namespace fedsim {

class ThreadPool {
 public:
  // Starts the threads. REQUIRES: num_threads >= 1.
  explicit ThreadPool(int num_threads);

  // Runs every closure scheduled so far (including those they schedule),
  // then joins the threads. REQUIRES: not called from a pool thread.
  ~ThreadPool();

  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  // Queues `fn` to run on one of the threads. REQUIRES: the destructor has
  // not started.
  void Schedule(std::function<void()> fn);

  int num_threads() const { return static_cast<int>(threads_.size()); }

  // Closures scheduled and not yet finished (queued or running).
  size_t outstanding() const;

 private:
  void Loop();

  mutable absl::Mutex mu_;
  std::deque<std::function<void()>> queue_ ABSL_GUARDED_BY(mu_);
  size_t running_ ABSL_GUARDED_BY(mu_) = 0;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  std::vector<std::thread> threads_;
};

// Calls fn(0), ..., fn(n - 1) and returns when all calls have returned.
// Index 0 runs on the calling thread, the others on `pool` (all on the
// calling thread when pool is null). REQUIRES: not called from a thread of
// `pool` when the pool could be full (the call would wait for itself).
void ParallelFor(ThreadPool* pool, size_t n, absl::FunctionRef<void(size_t)> fn);

}  // namespace fedsim

#endif  // FEDSIM_UTIL_THREAD_POOL_H_
