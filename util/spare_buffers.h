// SpareBuffers: large vectors kept for reuse by code that allocates one per
// message on one thread and frees it on another.
//
// The gRPC transport copies each pre-aggregated sum (1.6 MB on the pfl
// recipe) out of the worker's shared-memory slot into a fresh vector, which
// the engine frees after the round. Even with util/allocator.h's settings,
// that fresh vector often landed on pages the thread's heap had not touched
// yet: 389 page faults per copy, which took 5 ms instead of 0.1 ms on a
// guest where a fault costs about 12 us, at the end of a round where
// everyone waits for it. Handing the freed vector back here keeps its pages.
//
// Thread safety: Take and Give may be called from any thread.
#ifndef FEDSIM_UTIL_SPARE_BUFFERS_H_
#define FEDSIM_UTIL_SPARE_BUFFERS_H_

#include <cstddef>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"

namespace fedsim {

template <typename T>
class SpareBuffers {
 public:
  // Keeps at most `max_kept` vectors; more given back are freed.
  explicit SpareBuffers(size_t max_kept) : max_kept_(max_kept) {}

  // An empty vector with room for at least n elements: a kept one when one
  // is large enough (the most recently given back first), else a new one.
  std::vector<T> Take(size_t n) {
    std::vector<T> v = TakeKept(n);
    v.clear();
    v.reserve(n);  // a no-op for a kept one
    return v;
  }

  // A vector of n elements for a caller that overwrites all of them: a kept
  // one resized without touching the elements it holds (their values are
  // whatever was given back), else n value-initialized ones. Spares the
  // zeroing pass that Take(n) followed by resize(n) makes.
  std::vector<T> TakeSized(size_t n) {
    std::vector<T> v = TakeKept(n);
    v.resize(n);
    return v;
  }

  // Keeps `v` for a later Take (which empties it) or TakeSized (which keeps
  // its elements), unless max_kept are kept already or it holds no memory.
  void Give(std::vector<T> v) {
    if (v.capacity() == 0) return;
    absl::MutexLock lock(&mu_);
    if (spare_.size() < max_kept_) spare_.push_back(std::move(v));
  }

  size_t kept() const {
    absl::MutexLock lock(&mu_);
    return spare_.size();
  }

 private:
  // A kept vector with room for n (the most recently given back first), as
  // it was given; an empty one when none has room.
  std::vector<T> TakeKept(size_t n) {
    absl::MutexLock lock(&mu_);
    for (size_t i = spare_.size(); i-- > 0;) {
      if (spare_[i].capacity() >= n) {
        std::vector<T> v = std::move(spare_[i]);
        spare_.erase(spare_.begin() + static_cast<std::ptrdiff_t>(i));
        return v;
      }
    }
    return {};
  }

  const size_t max_kept_;
  mutable absl::Mutex mu_;
  std::vector<std::vector<T>> spare_ ABSL_GUARDED_BY(mu_);
};

}  // namespace fedsim

#endif  // FEDSIM_UTIL_SPARE_BUFFERS_H_
