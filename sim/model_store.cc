#include "sim/transport.h"

namespace fedsim {

void ModelStore::Put(Version v, Params params) {
  std::lock_guard<std::mutex> lock(mu_);
  versions_[v] = std::move(params);
}

ModelStore::Params ModelStore::Get(Version v) const {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = versions_.find(v);
  return it == versions_.end() ? nullptr : it->second;
}

void ModelStore::Release(Version v) {
  std::lock_guard<std::mutex> lock(mu_);
  versions_.erase(v);
}

size_t ModelStore::size() const {
  std::lock_guard<std::mutex> lock(mu_);
  return versions_.size();
}

}  // namespace fedsim
