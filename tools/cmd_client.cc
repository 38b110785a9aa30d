// fedsim client: a worker process that trains tasks for a server.
//
//   fedsim client --server=HOST:PORT [--slots=S] [--name=NAME] [--log_tasks]
//                 [--device=cpu|cuda:N] [--data=DIR,...]
//                 [--token_file=F] [--tls_ca=CA.pem [--tls_cert=C --tls_key=K]]
//                 [--peer_listen=HOST:PORT] [--peer_host=NAME]
//
// With --device=cuda:N the worker trains on that GPU: the tasks its slots
// hold at once train in one batched launch sequence (--slots=C clients; 0 =
// as many as fit in the GPU's memory).
//
// Prints one line when connected and a summary line at exit; exits 0 when the
// server says the run is finished, 2 on a wrong flag (before connecting), 1
// on any other error (message on stderr).
#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <string>
#include <thread>
#include <vector>

#include "absl/flags/declare.h"
#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/strings/str_cat.h"
#include "client/worker.h"
#include "tools/commands.h"
#include "tools/common_flags.h"
#include "tools/flag_checks.h"
#include "tools/security_flags.h"

ABSL_FLAG(std::string, server, "",
          "address of the fedsim server, HOST:PORT or unix:PATH (required)");
// --slots and --device are shared with `fedsim run` (flags are
// process-global; tools/common_flags.cc). Here --slots=0 means the number of
// cores on the CPU, the memory's fit on a GPU; --device=auto the CPU.
ABSL_FLAG(std::string, name, "", "name shown in the server's logs (default: hostname:pid)");
ABSL_FLAG(double, connect_timeout_s, 30, "seconds to keep trying to reach the server at start");
ABSL_FLAG(double, server_lost_timeout_s, 30,
          "seconds without an answer from the server mid-run before giving up");
ABSL_FLAG(std::string, scenario_dir, ".",
          "folder that relative paths in the scenario are resolved against");
ABSL_FLAG(std::vector<std::string>, data, {},
          "client folders this worker serves from their own data, comma-separated "
          "(--data=/data/client-0003,/data/client-0007); each folder's name is its client's "
          "name: in the server's client list (scenario deployment.clients_file), or admitted "
          "as it registers (deployment.admit_clients, which takes each folder's example "
          "counts). A client that registers again, from this machine or another, keeps its "
          "slot. The folders are checked against the run's model before training. 'fedsim "
          "split' writes such folders (format: data/client_folder.h, README 'Deploying across "
          "machines'). Without --data the worker simulates any client from the scenario's "
          "dataset.");
ABSL_FLAG(std::string, peer_listen, "127.0.0.1:0",
          "where this worker's Peer service listens, HOST:PORT (port 0: any free one). In a "
          "decentralized run (algorithm.decentralized) the client models live on the workers, "
          "which fetch their neighbours' models from each other and answer the server's "
          "gossip steps here; the server never receives them. Workers on several machines "
          "need an address the others can reach (--peer_listen=0.0.0.0:7001 "
          "--peer_host=this-machine's-name), which needs the run token; the peer traffic has "
          "no TLS. Empty: no Peer service (the worker then gets no decentralized clients)");
ABSL_FLAG(std::string, peer_host, "",
          "the host name or address other workers and the server dial this worker's Peer "
          "service by (default: --peer_listen's host)");
ABSL_FLAG(bool, log_tasks, false, "print a line per task (training, pushed or dropped) to stderr");

namespace fedsim {

int ClientMain(int argc, char** argv) {
  std::vector<char*> rest = absl::ParseCommandLine(argc, argv);
  if (rest.size() > 1) {
    std::fprintf(stderr, "fedsim client: unexpected argument '%s' (flags only)\n", rest[1]);
    return 2;
  }
  ProblemList flag_problems;
  CheckFlagAddress("server", absl::GetFlag(FLAGS_server),
                   "the address of the fedsim server, HOST:PORT", &flag_problems);
  CheckSlotsFlag(&flag_problems);
  CheckFlagSeconds("connect_timeout_s", absl::GetFlag(FLAGS_connect_timeout_s),
                   "seconds to keep trying to reach the server at start", &flag_problems);
  CheckFlagSeconds("server_lost_timeout_s", absl::GetFlag(FLAGS_server_lost_timeout_s),
                   "seconds without an answer from the server before giving up", &flag_problems);
  for (const std::string& dir : absl::GetFlag(FLAGS_data)) {
    std::error_code ec;
    if (!std::filesystem::is_directory(dir, ec)) {
      flag_problems.Add("data", absl::StrCat("'", dir,
                                             "' is not a folder; give the client "
                                             "folders this worker serves (see 'fedsim split')"));
    }
  }
  const DeviceSpec device = DeviceFromFlag(DeviceSpec{}, &flag_problems);
  if (!flag_problems.empty()) return ReportFlagProblems("client", flag_problems);
  WorkerOptions options;
  options.server = absl::GetFlag(FLAGS_server);
  options.device = device;
  options.slots = absl::GetFlag(FLAGS_slots);
  // On a GPU, 0 stays: the worker sizes its batch once it knows the model.
  if (options.slots == 0 && !device.is_gpu_backend()) {
    options.slots = std::max(1u, std::thread::hardware_concurrency());
  }
  options.name = absl::GetFlag(FLAGS_name);
  options.connect_timeout_s = absl::GetFlag(FLAGS_connect_timeout_s);
  options.server_lost_timeout_s = absl::GetFlag(FLAGS_server_lost_timeout_s);
  options.scenario_dir = absl::GetFlag(FLAGS_scenario_dir);
  options.data_dirs = absl::GetFlag(FLAGS_data);
  options.peer_listen = absl::GetFlag(FLAGS_peer_listen);
  options.peer_host = absl::GetFlag(FLAGS_peer_host);
  if (!options.peer_listen.empty()) {
    CheckFlagAddress("peer_listen", options.peer_listen,
                     "where the worker's Peer service listens, HOST:PORT", &flag_problems);
    if (!flag_problems.empty()) return ReportFlagProblems("client", flag_problems);
  }
  options.log = stdout;
  absl::StatusOr<ChannelSecurity> security = ChannelSecurityFromFlags();
  if (!security.ok()) {
    std::fprintf(stderr, "fedsim client: %s\n", std::string(security.status().message()).c_str());
    return 1;
  }
  options.security = *security;
  if (absl::GetFlag(FLAGS_log_tasks)) options.task_log = stderr;
  return RunWorkerAndReport(options);
}

int RunWorkerAndReport(const WorkerOptions& options) {
  WorkerSummary summary;
  absl::Status status = RunWorker(options, &summary);
  std::printf(
      "fedsim client: worker %llu: %llu tasks done (%llu duplicates, %llu dropped, %llu in %llu "
      "pre-aggregated sums), "
      "%llu model downloads, %.1f MB down, %.1f MB up, %.1f MB from peers, %.1f MB to peers "
      "(in shared memory: %.1f MB of updates, %.1f MB of models)\n",
      static_cast<unsigned long long>(summary.worker_id),
      static_cast<unsigned long long>(summary.tasks_done),
      static_cast<unsigned long long>(summary.duplicates),
      static_cast<unsigned long long>(summary.tasks_dropped),
      static_cast<unsigned long long>(summary.tasks_folded),
      static_cast<unsigned long long>(summary.sums_pushed),
      static_cast<unsigned long long>(summary.models_fetched), summary.bytes_fetched / 1e6,
      summary.bytes_pushed / 1e6, summary.bytes_from_peers / 1e6, summary.bytes_to_peers / 1e6,
      summary.bytes_shared / 1e6, summary.bytes_fetched_shared / 1e6);
  std::fflush(stdout);
  if (!status.ok()) {
    std::fprintf(stderr, "fedsim client: %s\n", status.ToString().c_str());
    return 1;
  }
  return 0;
}

}  // namespace fedsim
