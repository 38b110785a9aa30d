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
#include <optional>
#include <span>
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

// Where the data of clients generated on demand comes from (Synthetic with
// the natural partition): client i's training rows are its train split,
// GenerateSyntheticClient(options, i, seed, kTrain), made by whoever trains
// it and dropped after (see ClientTrainRows).
struct GeneratedClients {
  SyntheticOptions options;
  uint64_t seed = 0;  // the generator's seed (from the scenario seed)
  // 0, 1, 2, ...: as many as the largest client has training rows; every
  // generated client's row list is a prefix of it.
  std::vector<uint32_t> row_ids;
};

struct RunData {
  // The shared training rows, loaded once (clients are index lists into
  // them); null when client data is generated per task (`generated`).
  std::shared_ptr<const Dataset> train;
  // The global test set (always set).
  std::shared_ptr<const Dataset> test;
  // Row indices into *train, one list per client 0..num_clients-1; empty
  // when client data is generated per task.
  Partition clients;
  // Row indices into *test of each client's own test split, for the
  // evaluation tasks of runs whose clients bring their own data (a worker's
  // RunDataFromClientFolders); empty otherwise.
  Partition client_test;
  // Set instead of train/clients when each client's data is generated when
  // it trains: memory then does not grow with the fleet's data.
  std::optional<GeneratedClients> generated;
  // Training rows of each client 0..num_clients-1 (n_i, its weight), whether
  // its data is loaded or generated: 4 bytes a client.
  std::vector<uint32_t> client_rows;
  // The architecture, with the input shape and class count of the dataset.
  ModelConfig model;
  // Examples one task of client i processes: steps * batch_size when
  // local.steps > 0, else epochs * client_rows[i] (LocalSchedule::ExamplesFor).
  // The device model turns this into compute time (sim/devices.h).
  std::vector<uint64_t> examples_per_task;

  size_t num_clients() const { return client_rows.size(); }
};

// The scenario's Synthetic section as the generator's options.
SyntheticOptions SyntheticOptionsFromConfig(const config::Synthetic& synthetic);

// One client's training rows: `rows` index into *data. Valid while both
// this object and the RunData it came from live.
struct ClientTrainData {
  std::shared_ptr<const Dataset> data;
  std::span<const uint32_t> rows;
};

// Client `client`'s training rows: a view into the shared dataset, or, for
// generated clients, its train split generated now (time O(n_i x features)).
// InvalidArgument for a client out of range; the generator's errors.
// Thread-safe.
absl::StatusOr<ClientTrainData> ClientTrainRows(const RunData& data, uint32_t client);

// The fraction of client `client`'s training rows in each class
// (num_classes entries summing to 1; all zero for a client without rows).
// Generated clients are generated to count them. Thread-safe.
absl::StatusOr<std::vector<double>> ClientLabelDistribution(const RunData& data, uint32_t client);

// ClientLabelDistribution of every client, for the participation generators
// that need them (label-correlated probabilities). O(num_clients x classes)
// memory; for generated clients, time O(all their rows), but only one
// client's rows in memory at a time.
absl::StatusOr<std::vector<std::vector<double>>> LabelDistributions(const RunData& data);

// Loads the dataset and partitions it as `resolved` says:
//   - fashion_mnist: LoadFashionMnist(dir, train_limit, test_limit); a
//     relative dir is resolved against scenario_dir.
//   - synthetic with partition natural: nothing is generated up front but
//     the clients' sizes (SyntheticClientSize, O(1) each) and the global test
//     set, the union of the clients' test splits in client order cut at
//     eval.test_limit rows (GenerateSyntheticTestSet: only the clients it
//     needs); each client's rows are generated when it trains (`generated`).
//   - synthetic with another partition: GenerateSynthetic(alpha, beta, iid,
//     examples_per_client) for num_clients clients, all rows in memory, then
//     partitioned as below.
//   - partition iid / dirichlet / shards over the training rows with the seed
//     Rng(seed, "partition").
// Errors: those of the loaders (NotFound naming the missing file, DataLoss),
// and InvalidArgument naming the scenario field and what to change when the
// data cannot be split as asked (more clients than rows, shards_per_client *
// num_clients > rows, min_size * num_clients > rows, no Dirichlet draw with
// min_size rows per client); ResourceExhausted for a Synthetic client
// larger than kMaxSyntheticRows, too many Synthetic rows to hold, or memory
// that runs out (never an uncaught std::bad_alloc).
// REQUIRES: `resolved` went through FillDefaults and ValidateScenario
// (LoadScenario does both).
absl::StatusOr<RunData> BuildRunData(const config::Scenario& resolved,
                                     const std::string& scenario_dir);

// (ModelConfigFromProto, the model section as the trainer's ModelConfig, is
// in runtime/model_setup.h.)

}  // namespace fedsim

#endif  // FEDSIM_RUNTIME_RUN_SETUP_H_
