// LocalClientModels: the ClientModels (core/client_models.h) of a run whose
// client models live in the rule's own memory: in-process runs and tests.
// Gossip runs GossipStep (algorithms/gossip.h) over all clients at once.
//
// Thread safety: not thread-safe.
#ifndef FEDSIM_ALGORITHMS_LOCAL_CLIENT_MODELS_H_
#define FEDSIM_ALGORITHMS_LOCAL_CLIENT_MODELS_H_

#include <cstdint>
#include <memory>
#include <span>
#include <vector>

#include "core/client_models.h"

namespace fedsim {

class LocalClientModels final : public ClientModels {
 public:
  using Params = std::shared_ptr<const std::vector<float>>;

  explicit LocalClientModels(size_t num_clients) : x_(num_clients), y_(num_clients) {}

  absl::Status Init(std::span<const float> x0, Version version) override;
  absl::Status Restore(std::span<const std::span<const float>> models,
                       std::span<const std::span<const float>> trained, Version version) override;
  absl::Status PrepareRound(Version version) override;
  absl::Status Trained(ClientId c, Version version, std::vector<float> delta) override;
  absl::StatusOr<MixSummary> Mix(Version version, std::span<const uint8_t> trained,
                                 const MixRows& rows, uint32_t steps, std::span<float> average,
                                 std::vector<ClientId>* lost_trained) override;
  absl::StatusOr<std::vector<float>> Get(ClientId c, Version version) override;
  absl::StatusOr<std::vector<float>> GetTrained(ClientId c, Version version) override;
  bool remote() const override { return false; }

  // x_i of the current version, shared (the rule publishes it for tasks).
  const Params& model(ClientId c) const { return x_[c]; }
  // y_i of the round in progress, nullptr when client c has not trained.
  const Params& trained(ClientId c) const { return y_[c]; }
  Version version() const { return version_; }

 private:
  std::vector<Params> x_;  // x_i at version_
  std::vector<Params> y_;  // y_i of the round in progress
  Version version_ = 0;
  std::vector<float> buffers_[2];  // z^q, N x P each, reused across rounds
};

}  // namespace fedsim

#endif  // FEDSIM_ALGORITHMS_LOCAL_CLIENT_MODELS_H_
