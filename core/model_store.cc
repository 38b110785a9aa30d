#include "core/model_store.h"

#include "absl/strings/str_cat.h"

namespace fedsim {

std::string ModelRef::ToString() const {
  if (is_global()) return absl::StrCat("global@", version);
  return absl::StrCat("client", client, "@", version);
}

void ModelStore::Put(const ModelRef& ref, Params params) {
  std::lock_guard<std::mutex> lock(mu_);
  models_[ref] = std::move(params);
}

ModelStore::Params ModelStore::Get(const ModelRef& ref) const {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = models_.find(ref);
  return it == models_.end() ? nullptr : it->second;
}

void ModelStore::Release(const ModelRef& ref) {
  std::lock_guard<std::mutex> lock(mu_);
  models_.erase(ref);
}

size_t ModelStore::size() const {
  std::lock_guard<std::mutex> lock(mu_);
  return models_.size();
}

size_t ModelStore::floats() const {
  std::lock_guard<std::mutex> lock(mu_);
  size_t n = 0;
  for (const auto& [ref, p] : models_) n += p != nullptr ? p->size() : 0;
  return n;
}

}  // namespace fedsim
