// Everything a server or worker needs that follows from a resolved scenario:
// the datasets, each client's rows, the model architecture, the local
// training configuration and the per-client figures derived from them.
//
// BuildRunData is a deterministic function of the resolved scenario (and the
// data files it names): the server and every worker process call it on the
// same scenario and get identical partitions. All randomness comes from the
// scenario seed through util/rng.h (purposes "partition" and "synthetic").
//
// Thread safety: pure functions. RunData is immutable once built; its
// datasets are shared read-only (Dataset is safe for concurrent reads).
#ifndef FEDSIM_RUNTIME_RUN_SETUP_H_
#define FEDSIM_RUNTIME_RUN_SETUP_H_

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "data/dataset.h"
#include "data/partition.h"
#include "ml/local_trainer.h"
#include "ml/model.h"
#include "proto/scenario.pb.h"
#include "runtime/model_setup.h"

namespace fedsim {

struct RunData {
  // Loaded once, shared by every client (clients are index lists into them).
  std::shared_ptr<const Dataset> train;
  std::shared_ptr<const Dataset> test;
  // Row indices into *train, one list per client 0..num_clients-1.
  Partition clients;
  // The architecture, with the input shape and class count of the dataset.
  ModelConfig model;
  // Examples one task of client i processes: steps * batch_size when
  // local.steps > 0, else epochs * |clients[i]| (LocalSchedule::ExamplesFor).
  // The device model turns this into compute time (sim/devices.h).
  std::vector<uint64_t> examples_per_task;
  // Per client, the fraction of its rows in each class (num_classes entries,
  // summing to 1; all zero for a client without rows). Participation
  // generators (label-correlated probabilities) use it.
  std::vector<std::vector<double>> label_distribution;
};

// Loads the dataset and partitions it as `resolved` says:
//   - fashion_mnist: LoadFashionMnist(dir, train_limit, test_limit); a
//     relative dir is resolved against scenario_dir.
//   - synthetic: GenerateSynthetic(alpha, beta, iid, examples_per_client) for
//     num_clients clients; the global test set is the union of the clients'
//     test splits; partition natural keeps each client's own rows.
//   - partition iid / dirichlet / shards over the training rows with the seed
//     Rng(seed, "partition").
// Errors: those of the loaders (NotFound naming the missing file, DataLoss),
// and InvalidArgument naming the scenario field and what to change when the
// data cannot be split as asked (more clients than rows, shards_per_client *
// num_clients > rows, min_size * num_clients > rows, no Dirichlet draw with
// min_size rows per client).
// REQUIRES: `resolved` went through FillDefaults and ValidateScenario
// (LoadScenario does both).
absl::StatusOr<RunData> BuildRunData(const config::Scenario& resolved,
                                     const std::string& scenario_dir);

// (ModelConfigFromProto, the model section as the trainer's ModelConfig, is
// in runtime/model_setup.h.)

}  // namespace fedsim

#endif  // FEDSIM_RUNTIME_RUN_SETUP_H_
