#include "client/model_cache.h"

#include <algorithm>
#include <utility>

namespace fedsim {

ModelCache::ModelCache(size_t capacity, Fetcher fetch)
    : capacity_(std::max<size_t>(capacity, 1)), fetch_(std::move(fetch)) {}

absl::StatusOr<ModelCache::Params> ModelCache::Get(const ModelRef& v) {
  std::shared_ptr<Entry> entry;
  {
    absl::MutexLock lock(&mu_);
    auto it = entries_.find(v);
    if (it != entries_.end()) {
      lru_.remove(v);
      lru_.push_front(v);
      entry = it->second;
      while (!entry->done) done_cv_.Wait(&mu_);
      if (!entry->status.ok()) return entry->status;
      return entry->params;
    }
    entry = std::make_shared<Entry>();
    entries_.emplace(v, entry);
    lru_.push_front(v);
    // Waiters on an evicted entry keep it alive through their shared_ptr.
    while (lru_.size() > capacity_) {
      entries_.erase(lru_.back());
      lru_.pop_back();
    }
    ++downloads_;
  }
  absl::StatusOr<std::vector<float>> fetched = fetch_(v);
  absl::MutexLock lock(&mu_);
  entry->done = true;
  if (fetched.ok()) {
    entry->params = std::make_shared<const std::vector<float>>(std::move(fetched).value());
  } else {
    entry->status = fetched.status();
    auto it = entries_.find(v);
    if (it != entries_.end() && it->second == entry) {
      entries_.erase(it);
      lru_.remove(v);
    }
  }
  done_cv_.SignalAll();
  if (!entry->status.ok()) return entry->status;
  return entry->params;
}

uint64_t ModelCache::downloads() const {
  absl::MutexLock lock(&mu_);
  return downloads_;
}

}  // namespace fedsim
