#include "algorithms/local_client_models.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "algorithms/gossip.h"
#include "algorithms/mixing.h"
#include "core/mix_math.h"
#include "util/status_macros.h"

namespace fedsim {

absl::Status LocalClientModels::Init(std::span<const float> x0, Version version) {
  // Every client starts from the same model: one shared vector.
  auto shared = std::make_shared<const std::vector<float>>(x0.begin(), x0.end());
  x_.assign(x_.size(), shared);
  y_.assign(y_.size(), nullptr);
  version_ = version;
  return absl::OkStatus();
}

absl::Status LocalClientModels::Restore(std::span<const std::span<const float>> models,
                                        std::span<const std::span<const float>> trained,
                                        Version version) {
  if (models.size() != x_.size() || (!trained.empty() && trained.size() != x_.size())) {
    return absl::InvalidArgumentError(
        absl::StrCat("restore: ", models.size(), " models for ", x_.size(), " clients"));
  }
  for (size_t i = 0; i < models.size(); ++i) {
    x_[i] = std::make_shared<const std::vector<float>>(models[i].begin(), models[i].end());
    y_[i] = nullptr;
    if (!trained.empty() && !trained[i].empty()) {
      y_[i] = std::make_shared<const std::vector<float>>(trained[i].begin(), trained[i].end());
    }
  }
  version_ = version;
  return absl::OkStatus();
}

absl::Status LocalClientModels::PrepareRound(Version version) {
  if (version != version_) {
    return absl::InternalError(
        absl::StrCat("client models are at version ", version_, ", the round asks for ", version));
  }
  y_.assign(y_.size(), nullptr);
  return absl::OkStatus();
}

absl::Status LocalClientModels::Trained(ClientId c, Version version, std::vector<float> delta) {
  if (c >= x_.size() || version != version_ || x_[c] == nullptr) {
    return absl::InternalError(absl::StrCat("client ", c, " trained from version ", version,
                                            ", the models are at ", version_));
  }
  const std::vector<float>& x = *x_[c];
  if (delta.size() != x.size()) {
    return absl::InvalidArgumentError(absl::StrCat("update of client ", c, " has ", delta.size(),
                                                   " values, its model ", x.size()));
  }
  // y_i = x_i + delta_i, in the delta's storage.
  for (size_t j = 0; j < x.size(); ++j) delta[j] += x[j];
  y_[c] = std::make_shared<const std::vector<float>>(std::move(delta));
  return absl::OkStatus();
}

absl::StatusOr<MixSummary> LocalClientModels::Mix(Version version, std::span<const uint8_t> trained,
                                                  const MixRows& rows, uint32_t steps,
                                                  std::span<float> average,
                                                  std::vector<ClientId>* lost_trained) {
  (void)lost_trained;  // nothing is ever lost here
  const size_t n = x_.size();
  if (version != version_ || rows.size() != n || trained.size() != n) {
    return absl::InternalError("client models: a mix of the wrong version or size");
  }
  const size_t p = n == 0 ? 0 : x_[0]->size();
  CustomMatrix custom(n);
  for (size_t i = 0; i < n; ++i) {
    for (const MixEntry& e : rows[i]) custom[i].push_back(MatrixEntry{e.col, e.weight});
  }
  FEDSIM_ASSIGN_OR_RETURN(MixingMatrix w, MixingMatrix::FromRows(custom));

  // z^0 = y (trained) or x; then `steps` steps between two N x P buffers.
  std::vector<std::span<const float>> in(n);
  for (size_t i = 0; i < n; ++i) {
    if (trained[i] && y_[i] == nullptr) {
      return absl::InternalError(absl::StrCat("client ", i, " trained but its model is missing"));
    }
    in[i] = trained[i] ? *y_[i] : *x_[i];
  }
  for (std::vector<float>& b : buffers_) b.resize(n * p);
  std::vector<std::span<float>> out(n);
  int cur = 0;
  for (uint32_t q = 0; q < steps; ++q) {
    for (size_t i = 0; i < n; ++i) out[i] = std::span<float>(buffers_[cur]).subspan(i * p, p);
    FEDSIM_RETURN_IF_ERROR(GossipStep(w, in, out));
    for (size_t i = 0; i < n; ++i) in[i] = out[i];
    cur = 1 - cur;
  }
  for (size_t i = 0; i < n; ++i) {
    // A row that is the identity gives back its input bit for bit, so a
    // client that did not train keeps its (shared) vector.
    const bool identity = rows[i].size() == 1 && rows[i][0].col == i && rows[i][0].weight == 1;
    if (!identity || trained[i]) {
      x_[i] = std::make_shared<const std::vector<float>>(in[i].begin(), in[i].end());
    }
  }
  y_.assign(n, nullptr);
  version_ = version + 1;

  std::vector<double> mean(p, 0.0);
  for (size_t i = 0; i < n; ++i) AddToModelSum(*x_[i], mean);
  for (size_t j = 0; j < p && j < average.size(); ++j) {
    mean[j] /= static_cast<double>(n);
    average[j] = static_cast<float>(mean[j]);
  }
  double dist = 0;
  for (size_t i = 0; i < n; ++i) dist = AddSquaredDistance(*x_[i], mean, dist);
  MixSummary summary;
  summary.consensus_distance = n > 0 ? dist / static_cast<double>(n) : 0.0;
  return summary;
}

absl::StatusOr<std::vector<float>> LocalClientModels::GetTrained(ClientId c, Version version) {
  if (c >= y_.size() || version != version_ || y_[c] == nullptr) {
    return absl::NotFoundError(
        absl::StrCat("client ", c, " has not trained from version ", version));
  }
  return *y_[c];
}

absl::StatusOr<std::vector<float>> LocalClientModels::Get(ClientId c, Version version) {
  if (c >= x_.size() || version != version_ || x_[c] == nullptr) {
    return absl::NotFoundError(absl::StrCat("client ", c, "'s model at version ", version,
                                            " is not kept (the models are at ", version_, ")"));
  }
  return *x_[c];
}

}  // namespace fedsim
