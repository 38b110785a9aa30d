// ModelStore: the models tasks train from, shared between the engine (which
// publishes them) and the transports (which hand them to executors and
// workers). Keyed by ModelRef; values are immutable and shared, so a reader
// keeps a model alive for as long as it holds the pointer even after the
// engine releases it.
//
// Thread-safe.
#ifndef FEDSIM_CORE_MODEL_STORE_H_
#define FEDSIM_CORE_MODEL_STORE_H_

#include <cstddef>
#include <memory>
#include <mutex>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "core/model_ref.h"

namespace fedsim {

class ModelStore {
 public:
  using Params = std::shared_ptr<const std::vector<float>>;

  // Adds (or replaces) the model named `ref`.
  void Put(const ModelRef& ref, Params params);
  // nullptr when `ref` is not (or no longer) kept.
  Params Get(const ModelRef& ref) const;
  // Forgets `ref` (readers holding it keep their copy). No-op when absent.
  void Release(const ModelRef& ref);
  size_t size() const;
  // Floats held by all entries (shared entries counted once per name).
  size_t floats() const;

 private:
  mutable std::mutex mu_;
  // Open addressing: an asynchronous rule puts and releases a version per
  // event, which a node-based map pays for with an allocation each.
  absl::flat_hash_map<ModelRef, Params, ModelRefHash> models_;
};

}  // namespace fedsim

#endif  // FEDSIM_CORE_MODEL_STORE_H_
