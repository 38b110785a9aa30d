// `fedsim split`: each simulated client's data as its own client folder
// (data/client_folder.h), so that deployed client processes can train on
// exactly the data a simulation gave their clients.
//
// Client i's training split is its partition (RunData::clients[i], in row
// order) or, for generated clients, its generated train split. Its test
// split is, for generated clients, its own generated test split; otherwise
// a share of the run's global test set: the test rows, shuffled with the
// scenario seed (purpose "split-test"), are dealt to the clients in
// proportion to their training rows (largest remainder, ties to the lower
// id), each share in ascending row order. The shares partition the test set,
// so the example-weighted mean of the clients' test accuracies is the
// central test accuracy of the same model: federated evaluation of a
// deployment on this data is comparable with the simulation's.
//
// Thread safety: pure functions of their inputs and the files they write.
#ifndef FEDSIM_RUNTIME_CLIENT_SPLIT_H_
#define FEDSIM_RUNTIME_CLIENT_SPLIT_H_

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "data/client_folder.h"
#include "data/partition.h"
#include "proto/scenario.pb.h"
#include "runtime/run_setup.h"

namespace fedsim {

// The test rows of each client (see the file comment): a partition of
// [0, test_rows) with sizes proportional to `train_rows`. Empty lists for
// clients whose share rounds to 0. REQUIRES: train_rows not all 0.
Partition DealTestRows(std::span<const uint32_t> train_rows, size_t test_rows, uint64_t seed);

// The folder name of client i among n: "client-" and i with as many digits
// as n - 1 has, at least 4 ("client-0007").
std::string ClientFolderName(uint32_t client, size_t num_clients);

struct SplitClient {
  std::string name;
  uint64_t train_rows = 0;
  uint64_t test_rows = 0;
};

// Writes one client folder per client of `data` (built from `resolved`)
// under `out_dir`, named by ClientFolderName, and out_dir/index.csv with the
// columns client,name,train_rows,test_rows (comment lines first name the
// scenario, its seed and `scenario_hash`, config/scenario_file.h's
// ScenarioHash of it). `progress(done, total)` is called after each client.
// Errors: those of the generator and the writers.
absl::StatusOr<std::vector<SplitClient>> SplitClients(
    const config::Scenario& resolved, const std::string& scenario_hash, const RunData& data,
    const std::string& out_dir, const std::function<void(size_t, size_t)>& progress = {});

// A client list in index.csv's format: `comment` (each line prefixed
// "# "; may be empty), the header client,name,train_rows,test_rows, then a
// row per client in order.
std::string ClientListText(const std::vector<SplitClient>& clients, const std::string& comment);

// Reads a client list as SplitClients writes it (index.csv): the columns
// client,name,train_rows,test_rows, one row per client 0..num_clients-1 in
// that order. InvalidArgument "<path>:<line>: ..." for a row out of order, a
// repeated or empty name, a name that is not a folder name (holds '/'), a
// count that is not a number, or a list of another length than num_clients;
// NotFound when the file cannot be read.
absl::StatusOr<std::vector<SplitClient>> ReadClientList(const std::string& path,
                                                        size_t num_clients);

// The server's RunData for a run whose clients bring their own data and a
// server that holds none: the model, each client's n_i from the list (and
// the examples its task processes under `local`), no training rows and an
// empty test set.
RunData RunDataFromClientList(const ModelConfig& model, const std::vector<SplitClient>& list,
                              const config::LocalTraining& local);

// A worker's RunData for a run whose clients bring their own data: the
// model from `model`, num_clients clients, of which `slots[i]` holds the
// training split of `folders[i]` (all the folders' rows in one shared
// dataset) and every other client none. Tasks of the held clients then run
// exactly as on the simulation's RunData when the folders hold the same rows.
// REQUIRES: folders.size() == slots.size(); slots distinct and < num_clients;
// every folder's data of model's shape (LoadClientFolder checked it).
RunData RunDataFromClientFolders(const ModelConfig& model, size_t num_clients,
                                 const std::vector<ClientFolder>& folders,
                                 const std::vector<uint32_t>& slots);

}  // namespace fedsim

#endif  // FEDSIM_RUNTIME_CLIENT_SPLIT_H_
