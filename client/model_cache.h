// ModelCache: the worker's cache of models, keyed by ModelRef, so that N
// tasks on one worker that train from the same model (the global model at one
// version, or one client's model) download it once.
//
// Keeps the `capacity` most recently used models (LRU). Concurrent Get()s
// of a model that is not cached share one download: the first caller
// fetches, the others wait for it. A failed download is not cached; the next
// Get() tries again.
//
// Thread-safe. The fetch function is called without the cache's lock held,
// from the thread of the Get() that missed.
#ifndef FEDSIM_CLIENT_MODEL_CACHE_H_
#define FEDSIM_CLIENT_MODEL_CACHE_H_

#include <cstdint>
#include <functional>
#include <list>
#include <memory>
#include <unordered_map>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "core/model_ref.h"

namespace fedsim {

class ModelCache {
 public:
  using Params = std::shared_ptr<const std::vector<float>>;
  using Fetcher = std::function<absl::StatusOr<std::vector<float>>(const ModelRef&)>;

  // REQUIRES: capacity >= 1.
  ModelCache(size_t capacity, Fetcher fetch);

  // The parameters of `model`, downloaded on a miss. Errors are the
  // fetcher's (the caller waiting on another's download gets the same one).
  absl::StatusOr<Params> Get(const ModelRef& model);

  // Downloads started so far (misses).
  uint64_t downloads() const;

 private:
  struct Entry {
    bool done = false;
    absl::Status status;
    Params params;
  };

  const size_t capacity_;
  const Fetcher fetch_;
  mutable absl::Mutex mu_;
  absl::CondVar done_cv_;
  std::list<ModelRef> lru_ ABSL_GUARDED_BY(mu_);  // most recent first
  std::unordered_map<ModelRef, std::shared_ptr<Entry>, ModelRefHash> entries_
      ABSL_GUARDED_BY(mu_);
  uint64_t downloads_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace fedsim

#endif  // FEDSIM_CLIENT_MODEL_CACHE_H_
