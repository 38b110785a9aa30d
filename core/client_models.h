// ClientModels: where a decentralized rule keeps its clients' models x_i
// and how it mixes them (ALGORITHMS.md section 6).
//
// In-process (and in tests) the models live in the rule's own memory
// (algorithms/local_client_models.h). With worker processes they live on
// the workers (server/peer_models.h): each client has a home worker that
// holds x_i, trains the client's tasks and keeps y_i; gossip steps run on
// the workers, which fetch their neighbours' models from each other; the
// server sees only the sum of all models (the average model) and the
// models it asks for by name. Both implementations compute every value
// with the same operations in the same order, so a run gives the same bits
// either way, with any number of workers.
//
// Versions: x_i at version v is client i's model after v commits. A round
// trains some clients from x_i^v (their y_i), mixes, and yields x_i^(v+1)
// for every client.
//
// Thread safety: not thread-safe; the engine thread calls it.
#ifndef FEDSIM_CORE_CLIENT_MODELS_H_
#define FEDSIM_CORE_CLIENT_MODELS_H_

#include <cstdint>
#include <span>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "core/types.h"

namespace fedsim {

// One entry of a mixing row: z_i += weight * z_col. The weight is the
// mixing matrix's entry rounded to float once (algorithms/gossip.h).
struct MixEntry {
  ClientId col = 0;
  float weight = 0;
};

// Row i of a round's mixing matrix, columns ascending. A row {(i, 1)} keeps
// client i's model as it is (a client that did not train).
using MixRows = std::vector<std::vector<MixEntry>>;

// What a finished round left behind.
struct MixSummary {
  // (1/N) sum_i ||x_i - mean||^2 over the new models, summed in double in
  // client order, then parameter order.
  double consensus_distance = 0;
};

class ClientModels {
 public:
  virtual ~ClientModels() = default;

  // Every client's model at `version` is `x0`. With workers, x0 must be
  // fetchable from the server as client@version for every client (the rule
  // publishes it).
  virtual absl::Status Init(std::span<const float> x0, Version version) = 0;

  // A run continued from a checkpoint: client i's model at `version` is
  // models[i] (published on the server the same way as Init's), and the
  // clients with a non-empty trained[i] (empty `trained`: none) trained
  // from it in the round in progress, to trained[i] (y_i).
  virtual absl::Status Restore(std::span<const std::span<const float>> models,
                               std::span<const std::span<const float>> trained,
                               Version version) = 0;

  // Before a round's tasks are dispatched: the models of `version` are where
  // the round's tasks will look for them (workers that joined or left are
  // accounted for). Errors: DataLoss when a client's model is gone with its
  // worker and no backup is left.
  virtual absl::Status PrepareRound(Version version) = 0;

  // Client `c` trained from x_c^version; `delta` = y_c - x_c (empty where
  // the worker kept y_c itself). y_c = x_c + delta in float.
  virtual absl::Status Trained(ClientId c, Version version, std::vector<float> delta) = 0;

  // The round's gossip: z^0_i = y_i for `trained` clients, x_i^version for
  // the others; `steps` times z^q_i = sum_e rows[i][e].weight * z^(q-1)_col
  // (products exact in double, summed in double in column order, rounded
  // to float); x_i^(version+1) = z^steps_i. Then the average of the new
  // models is written to `average` (sum in double in client order, divided
  // by N, rounded to float) and the consensus distance returned.
  // Errors: Aborted when a worker was lost during the round; the models of
  // `version` are then still there and `lost_trained` (not null) lists the
  // trained clients whose y_i went with it: the rule may retry without them.
  virtual absl::StatusOr<MixSummary> Mix(Version version, std::span<const uint8_t> trained,
                                         const MixRows& rows, uint32_t steps,
                                         std::span<float> average,
                                         std::vector<ClientId>* lost_trained) = 0;

  // Client `c`'s model at `version` (the current one), for evaluation and
  // checkpoints; and y_c of the round in progress (checkpoints).
  virtual absl::StatusOr<std::vector<float>> Get(ClientId c, Version version) = 0;
  virtual absl::StatusOr<std::vector<float>> GetTrained(ClientId c, Version version) = 0;

  // Whether models live elsewhere (workers): the rule then neither keeps nor
  // publishes the trained models, and Get costs a transfer.
  virtual bool remote() const = 0;
};

}  // namespace fedsim

#endif  // FEDSIM_CORE_CLIENT_MODELS_H_
