// Pieces shared by `fedsim run`, `fedsim server` and `fedsim replay`.
#ifndef FEDSIM_TOOLS_RUN_COMMON_H_
#define FEDSIM_TOOLS_RUN_COMMON_H_

#include <atomic>
#include <cstdio>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
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
// num_clients; nullopt for a scenario without one.
// A resumed run that admitted its clients (deployment.admit_clients) reads
// the list it wrote, `resume_dir`/clients.csv, instead.
absl::StatusOr<std::optional<std::vector<SplitClient>>> LoadClientList(
    const config::Scenario& scenario, const std::string& scenario_dir,
    const std::string& resume_dir = "");

// The file a run that admits its clients writes its admitted list to.
inline constexpr char kAdmittedClientsFile[] = "clients.csv";

// A run that admits its clients by name, before they came: a placeholder
// list of num_clients nameless clients of one example each, for PrepareRun
// to resolve the model and scenario with (the real list replaces it).
std::vector<SplitClient> PlaceholderClientList(const config::Scenario& scenario);

// The clients a transport admitted, as a client list.
std::vector<SplitClient> AdmittedClientList(const GrpcTransport& transport);

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

// The fleet's part of a server's progress line: " | clients 5/6, 3 tasks in
// flight (1 waiting), slowest client-0004 12.3 s" (clients only in
// local-data runs, the slowest only while a task is leased).
std::string FleetProgressText(const FleetStatus& fleet);

// While a run goes on between progress lines: every `every`, a line on
// `out` when a task has been out for half of that or more, or a listed
// client is away
// ("fedsim server: still training: clients 5/6, 3 tasks in flight, slowest
// client-0004 31.0 s"), so a long wall-clock round shows who it waits for.
// Stops (joining its thread) when destroyed.
class FleetTicker {
 public:
  FleetTicker(const GrpcTransport* transport, FILE* out, absl::Duration every);
  ~FleetTicker();
  FleetTicker(const FleetTicker&) = delete;
  FleetTicker& operator=(const FleetTicker&) = delete;

 private:
  absl::Mutex mu_;
  bool stop_ ABSL_GUARDED_BY(mu_) = false;
  std::thread thread_;
};

// A wall-clock run whose clients bring their own data starts once
// deployment.start_with_clients of them (0 = all) are connected, and a run
// that admits its clients once all num_clients have registered: waits for
// them, logging who is missing, for at most deployment.start_timeout_s.
// OK at once for other runs.
absl::Status AwaitStartingClients(const config::Scenario& scenario, GrpcTransport* transport);

}  // namespace fedsim

#endif  // FEDSIM_TOOLS_RUN_COMMON_H_
