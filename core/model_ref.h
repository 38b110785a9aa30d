// ModelRef: the name of one model a task can train from or a worker can fetch.
//
// Server-based rules have one global model whose versions count commits:
// ModelRef::Global(v). Decentralized rules keep one model per client whose
// versions count that client's updates: ModelRef::OfClient(i, k). Everything
// that stores, moves or caches models (the ModelStore, tasks, the wire
// protocol, the worker's cache) is keyed by a ModelRef, never by a bare
// version, so a rule may own per-client models without any layer below it
// knowing the difference.
//
// Thread safety: a plain value.
#ifndef FEDSIM_CORE_MODEL_REF_H_
#define FEDSIM_CORE_MODEL_REF_H_

#include <cstddef>
#include <cstdint>
#include <functional>
#include <string>

#include "core/types.h"

namespace fedsim {

struct ModelRef {
  enum class Kind : uint8_t {
    kGlobal = 0,  // the global model at `version` (commits so far)
    kClient = 1,  // client `client`'s own model at its `version`
  };
  // Default: the global model at version 0 (the initial model).
  Kind kind = Kind::kGlobal;
  // kClient only; 0 for global references.
  ClientId client = 0;
  Version version = 0;

  static constexpr ModelRef Global(Version v) { return ModelRef{Kind::kGlobal, 0, v}; }
  static constexpr ModelRef OfClient(ClientId c, Version k) {
    return ModelRef{Kind::kClient, c, k};
  }
  bool is_global() const { return kind == Kind::kGlobal; }

  // "global@3", "client17@5": for logs, errors and events.jsonl.
  std::string ToString() const;

  bool operator==(const ModelRef&) const = default;
  // Global before client models; then by client, then by version.
  bool operator<(const ModelRef& o) const {
    if (kind != o.kind) return kind < o.kind;
    if (client != o.client) return client < o.client;
    return version < o.version;
  }
};

struct ModelRefHash {
  size_t operator()(const ModelRef& r) const {
    uint64_t h = r.version * 0x9E3779B97F4A7C15ull;
    h ^= (static_cast<uint64_t>(r.client) << 1 | static_cast<uint64_t>(r.kind)) +
         0xBF58476D1CE4E5B9ull + (h << 6) + (h >> 2);
    return static_cast<size_t>(h);
  }
};

}  // namespace fedsim

#endif  // FEDSIM_CORE_MODEL_REF_H_
