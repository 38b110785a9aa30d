#include "util/thread_pool.h"

#include <algorithm>
#include <utility>

#include "absl/synchronization/blocking_counter.h"

namespace fedsim {

ThreadPool::ThreadPool(int num_threads) {
  const int n = std::max(num_threads, 1);
  threads_.reserve(n);
  for (int i = 0; i < n; ++i) threads_.emplace_back([this] { Loop(); });
}

ThreadPool::~ThreadPool() {
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
  }
  for (std::thread& t : threads_) t.join();
}

void ThreadPool::Schedule(std::function<void()> fn) {
  absl::MutexLock lock(&mu_);
  queue_.push_back(std::move(fn));
}

size_t ThreadPool::outstanding() const {
  absl::MutexLock lock(&mu_);
  return queue_.size() + running_;
}

void ThreadPool::Loop() {
  while (true) {
    std::function<void()> fn;
    {
      absl::MutexLock lock(&mu_);
      // A stopping pool drains its queue first. A running closure may still
      // schedule more, so a thread leaves only when nothing is queued and
      // nothing runs that could queue.
      auto ready = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
        return !queue_.empty() || (stopping_ && running_ == 0);
      };
      mu_.Await(absl::Condition(&ready));
      if (queue_.empty()) return;
      fn = std::move(queue_.front());
      queue_.pop_front();
      ++running_;
    }
    fn();
    absl::MutexLock lock(&mu_);
    --running_;
  }
}

void ParallelFor(ThreadPool* pool, size_t n, absl::FunctionRef<void(size_t)> fn) {
  if (n == 0) return;
  if (pool == nullptr || n == 1) {
    for (size_t i = 0; i < n; ++i) fn(i);
    return;
  }
  absl::BlockingCounter left(static_cast<int>(n - 1));
  for (size_t i = 1; i < n; ++i) {
    pool->Schedule([&fn, &left, i] {
      fn(i);
      left.DecrementCount();
    });
  }
  fn(0);
  left.Wait();
}

}  // namespace fedsim
