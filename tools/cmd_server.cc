// fedsim server: the aggregation server alone; workers (`fedsim client`)
// connect from this or other machines.
#include <unistd.h>

#include <cstdio>
#include <string>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "config/scenario_file.h"
#include "server/grpc_transport.h"
#include "sim/runner.h"
#include "tools/commands.h"
#include "tools/common_flags.h"
#include "tools/flag_checks.h"
#include "tools/run_common.h"
#include "tools/security_flags.h"

ABSL_FLAG(std::string, scenario, "", "The scenario file to run (required).");
ABSL_FLAG(std::string, listen, "127.0.0.1:50051",
          "Address to listen on, HOST:PORT (port 0 picks a free one and prints it) or "
          "unix:PATH (a Unix socket for workers on this machine, reachable by this user only; "
          "a socket file already at PATH is replaced). The "
          "default serves this machine only; for workers on other machines listen on "
          "0.0.0.0:PORT with --tls_cert/--tls_key and a run token ($FEDSIM_TOKEN or "
          "--token_file; scripts/make-test-certs makes both for a test), or add --insecure.");
ABSL_FLAG(std::string, server_out, "",
          "Folder for run results (default: the scenario's output.dir).");
ABSL_FLAG(double, worker_timeout, 5.0,
          "Seconds without a heartbeat after which a worker's tasks are given to others.");
ABSL_FLAG(double, no_worker_timeout, 600.0,
          "Give up when no worker has been connected for this many seconds while tasks wait.");

namespace fedsim {

// How long a resumed server keeps answering after its run ends (see below).
constexpr double kResumedEndLingerS = 8.0;

int ServerMain(int argc, char** argv) {
  const std::vector<std::string> overrides = ScenarioOverrides(argc, argv);
  absl::ParseCommandLine(argc, argv);
  const std::string path = absl::GetFlag(FLAGS_scenario);
  const std::string resume = absl::GetFlag(FLAGS_resume);
  if (path.empty() == resume.empty() || (!resume.empty() && !overrides.empty())) {
    std::fprintf(stderr,
                 "usage: fedsim server --scenario=FILE --listen=HOST:PORT\n"
                 "       fedsim server --resume=RUN_DIR --listen=HOST:PORT   (no --set)\n");
    return 2;
  }
  ProblemList flag_problems;
  CheckFlagAddress("listen", absl::GetFlag(FLAGS_listen), "the address to listen on, HOST:PORT",
                   &flag_problems);
  CheckFlagSeconds("worker_timeout", absl::GetFlag(FLAGS_worker_timeout),
                   "seconds without a heartbeat before a worker's tasks go to others",
                   &flag_problems);
  CheckFlagSeconds("no_worker_timeout", absl::GetFlag(FLAGS_no_worker_timeout),
                   "seconds with no worker connected before the server gives up", &flag_problems);
  CheckCheckpointEveryFlag(&flag_problems);
  if (!flag_problems.empty()) return ReportFlagProblems("server", flag_problems);
  absl::StatusOr<RunScenario> loaded = LoadScenarioToRun(path, overrides, resume);
  if (!loaded.ok()) {
    std::fprintf(stderr, "%s\n", std::string(loaded.status().message()).c_str());
    return 1;
  }
  const config::Scenario& scenario = loaded->scenario;
  const std::string& scenario_dir = loaded->scenario_dir;
  // Read once: it gives the server's data (when it holds none) and the names.
  absl::StatusOr<std::optional<std::vector<SplitClient>>> client_list =
      LoadClientList(scenario, scenario_dir, resume);
  if (!client_list.ok()) {
    std::fprintf(stderr, "fedsim server: %s\n",
                 std::string(client_list.status().message()).c_str());
    return 1;
  }
  // Admitting clients by name: until they come, a placeholder list gives
  // the model and the resolved scenario; the run is prepared again below.
  const bool admitting = scenario.deployment().admit_clients() && !client_list->has_value();
  absl::StatusOr<std::optional<RunData>> no_examples = ServerDataFromClientList(
      scenario, admitting ? std::optional<std::vector<SplitClient>>(PlaceholderClientList(scenario))
                          : *client_list);
  if (!no_examples.ok()) {
    std::fprintf(stderr, "fedsim server: %s\n",
                 std::string(no_examples.status().message()).c_str());
    return 1;
  }
  absl::StatusOr<std::unique_ptr<PreparedRun>> run =
      PrepareRun(scenario, scenario_dir, *std::move(no_examples));
  if (!run.ok()) {
    std::fprintf(stderr, "fedsim server: %s\n", std::string(run.status().message()).c_str());
    return 1;
  }
  InstallStopSignalHandlers();
  ModelStore store;
  GrpcServerOptions so;
  so.listen_address = absl::GetFlag(FLAGS_listen);
  so.heartbeat_timeout_s = absl::GetFlag(FLAGS_worker_timeout);
  so.no_worker_timeout_s = absl::GetFlag(FLAGS_no_worker_timeout);
  so.accept_mismatched_workers = absl::GetFlag(FLAGS_accept_worker_mismatch);
  so.shared_memory_updates = absl::GetFlag(FLAGS_shared_memory);
  so.log = stderr;
  so.interrupt = &g_interrupted;
  if (admitting) {
    so.admit_clients = (*run)->scenario.num_clients();  // n_i: what the clients report
  } else {
    so.client_examples = ClientExamples(**run);  // the server's own n_i
  }
  // Workers of the interrupted run may still be backing off between retries
  // of this address (up to about 4.5 s, see rpc/credentials.cc and
  // client/worker.cc) when a short resumed run ends: stay to tell them.
  if (!resume.empty()) so.end_linger_s = kResumedEndLingerS;
  std::vector<FederatedClient> federated;
  if (absl::Status s = SetLocalClients((*run)->scenario, *client_list, &so, &federated); !s.ok()) {
    std::fprintf(stderr, "fedsim server: %s\n", std::string(s.message()).c_str());
    return 1;
  }
  if (absl::Status s = ApplyServerSecurityFlags(&so); !s.ok()) {
    std::fprintf(stderr, "fedsim server: %s\n", std::string(s.message()).c_str());
    return 1;
  }
  SetNumericIdentity((*run)->scenario, &so);
  auto transport =
      StartGrpcTransport(so, ScenarioToText((*run)->scenario), (*run)->num_params, &store);
  if (!transport.ok()) {
    std::fprintf(stderr, "fedsim server: cannot listen on %s: %s\n", so.listen_address.c_str(),
                 std::string(transport.status().message()).c_str());
    return 1;
  }
  std::fprintf(stderr,
               "fedsim server: listening on %s; start workers with\n"
               "  fedsim client --server=%s\n",
               (*transport)->address().c_str(), (*transport)->address().c_str());
  if (absl::Status s = AwaitStartingClients((*run)->scenario, transport->get()); !s.ok()) {
    (*transport)->Shutdown();
    std::fprintf(stderr, "fedsim server: %s\n", std::string(s.message()).c_str());
    return absl::IsCancelled(s) ? 130 : 1;
  }
  RunOptions options;
  if (admitting) {
    // Every client came once: prepare the run on the admitted list, which
    // the run folder keeps for a resumed server.
    std::vector<SplitClient> admitted = AdmittedClientList(**transport);
    absl::StatusOr<std::optional<RunData>> data =
        ServerDataFromClientList((*run)->scenario, admitted);
    if (data.ok()) run = PrepareRun(scenario, scenario_dir, *std::move(data));
    if (!data.ok() || !run.ok()) {
      (*transport)->Shutdown();
      std::fprintf(stderr, "fedsim server: %s\n",
                   std::string((data.ok() ? run.status() : data.status()).message()).c_str());
      return 1;
    }
    (*transport)->SetClientExamples(ClientExamples(**run));
    for (size_t i = 0; i < admitted.size(); ++i) {
      federated.push_back(FederatedClient{static_cast<ClientId>(i), admitted[i].test_rows});
    }
    options.extra_files.emplace_back(
        kAdmittedClientsFile,
        ClientListText(admitted,
                       "the clients this run admitted, in the order they first "
                       "registered (fedsim server reads it back on --resume)"));
  }
  options.out_dir = absl::GetFlag(FLAGS_server_out);
  GrpcTransport* grpc = transport->get();
  options.progress_suffix = [grpc] { return FleetProgressText(grpc->fleet()); };
  options.terminal = isatty(2);
  options.interrupt = &g_interrupted;
  options.transport_name = "grpc server";
  options.resume_dir = resume;
  options.federated_eval = std::move(federated);
  options.checkpoint_every_commits =
      static_cast<uint32_t>(std::max(0, absl::GetFlag(FLAGS_checkpoint_every)));
  RunStatusReporter progress(transport->get(), (*run)->scenario.stop().max_commits());
  options.observers.push_back(&progress);  // for `fedsim status`
  absl::StatusOr<RunOutcome> outcome;
  {
    FleetTicker ticker(transport->get(), stderr, absl::Seconds(10));
    outcome = ExecuteRun(**run, transport->get(), &store, options);
  }
  if (so.end_linger_s > 0) {
    std::fprintf(stderr,
                 "fedsim server: telling workers that reconnect within %.0f s that the run is "
                 "over\n",
                 so.end_linger_s);
  }
  (*transport)->Shutdown();
  if (!outcome.ok()) {
    std::fprintf(stderr, "\nfedsim server: %s\n", std::string(outcome.status().message()).c_str());
    return 1;
  }
  PrintSummary(*outcome);
  return outcome->summary.stop_reason == "interrupted" ? 130 : 0;
}

}  // namespace fedsim
