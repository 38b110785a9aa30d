// Pieces shared by `fedsim run`, `fedsim server` and `fedsim replay`.
#ifndef FEDSIM_TOOLS_RUN_COMMON_H_
#define FEDSIM_TOOLS_RUN_COMMON_H_

#include <atomic>
#include <optional>
#include <string>
#include <vector>

#include "runtime/client_split.h"
#include "server/grpc_transport.h"
#include "sim/runner.h"

namespace fedsim {

// SIGINT/SIGTERM set this flag (and the signal number); the engine stops at
// its next event, partial results are kept.
extern std::atomic<bool> g_interrupted;
extern std::atomic<int> g_signal;
void InstallStopSignalHandlers();

// Prints the run's closing summary to stdout.
void PrintSummary(const RunOutcome& outcome);

// Sets the run's numeric mode and this server's fingerprint in it, which
// every worker must match (GrpcServerOptions::numeric_fingerprint).
void SetNumericIdentity(const config::Scenario& scenario, GrpcServerOptions* options);

// The client list of a scenario with deployment.clients_file (a relative
// path resolved against scenario_dir), read and checked against
// num_clients; nullopt for a scenario without one. FailedPrecondition for
// the wall clock (not supported with a client list yet).
absl::StatusOr<std::optional<std::vector<SplitClient>>> LoadClientList(
    const config::Scenario& scenario, const std::string& scenario_dir);

// For a scenario with a client list and no deployment.central_test_set: the
// server's data without any example (RunDataFromClientList), to give
// PrepareRun; nullopt otherwise (the server builds the scenario's data).
absl::StatusOr<std::optional<RunData>> ServerDataFromClientList(
    const config::Scenario& scenario, const std::optional<std::vector<SplitClient>>& list);

// Sets options->local_client_names from the client list, after checking
// its train_rows against the server's own n_i (options->client_examples),
// and *federated to the clients with a test split (federated evaluation).
// A scenario without a list (nullopt) changes nothing.
absl::Status SetLocalClients(const config::Scenario& scenario,
                             const std::optional<std::vector<SplitClient>>& list,
                             GrpcServerOptions* options, std::vector<FederatedClient>* federated);

}  // namespace fedsim

#endif  // FEDSIM_TOOLS_RUN_COMMON_H_
