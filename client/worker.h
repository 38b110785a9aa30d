// The worker process (`fedsim client`): connects to a server, hosts many
// virtual clients and trains their tasks in parallel slots.
//
//   Register (retrying until connect_timeout_s; the server checks the
//   protocol version, build id and numeric fingerprint) -> parse the
//   scenario the server hands out -> BuildRunData once (each dataset is
//   loaded once for all virtual clients) -> loop:
//     a poller long-polls GetTask for up to the number of free slots;
//     each leased task runs on a ThreadPool of `slots` threads: base model
//     (a ModelRef) from the ModelCache (one download per model per worker),
//     TaskRunner::Run, optional wall-clock emulation sleep, PushUpdate in
//     1 MiB chunks, or through a shared-memory slot when the server runs on
//     this machine (rpc/shm_segment.h); the push asks for the slot's next
//     task with its answer, so the poller only asks for slots a push left
//     empty;
//     a heartbeat thread reports the tasks in flight.
//   until the server says the run is finished (RunWorker returns OK).
//
// Every timeout and sleep is measured on options.clock, so tests drive a
// worker with a FakeClock; only gRPC's own call deadlines are real time.
//
// A task is a pure function of its spec, so a worker computes exactly what
// the in-process transport would; the server may hand the same task to two
// workers after a timeout and take either result.
//
// Thread safety: RunWorker() may be called from any thread; it starts and
// joins its own threads before returning. Two RunWorker calls in one process
// are independent.
#ifndef FEDSIM_CLIENT_WORKER_H_
#define FEDSIM_CLIENT_WORKER_H_

#include <cstdint>
#include <cstdio>
#include <map>
#include <string>

#include "absl/status/status.h"
#include "core/clock.h"
#include "ml/gpu/device.h"
#include "proto/scenario.pb.h"
#include "rpc/credentials.h"

namespace fedsim {

struct RunData;

struct WorkerOptions {
  // Server address, "host:port". Default: "" (required).
  std::string server;
  // A local link to the server (rpc/local_link.h): one end of a socket pair
  // whose other end the server serves (GrpcTransport::ServeLink), made by
  // the process that forked this worker. The calls then go over it, not
  // gRPC, and `server` only names the server in messages. RunWorker takes
  // ownership. When the link closes (the server process ended) the worker
  // stops at once instead of retrying. Default: -1 = none.
  int server_link_fd = -1;
  // Tasks trained in parallel (threads of the worker's pool). Default: 1
  // (the CLI defaults it to the number of cores). On a GPU device, the
  // tasks its slots train at once share batched launches (C = slots), and
  // 0 lets the worker choose C from the run's model and the free GPU memory
  // once it knows them (at registration).
  int slots = 1;
  // Where tasks train: the CPU, a CUDA GPU or the GPU backend's emulation
  // (ml/gpu/device.h). Default: the CPU.
  DeviceSpec device;
  // Shown in the server's logs. Default: "" = "<hostname>:<pid>".
  std::string name;
  // How long to keep trying to reach the server at start. Default: 30 s.
  double connect_timeout_s = 30;
  // Mid-run: give up once the server has not answered for this long.
  // Default: 30 s.
  double server_lost_timeout_s = 30;
  // Bound of one GetTask long poll. Default: 5 s.
  double long_poll_s = 5;
  // Models kept by the cache. Default: 4.
  int model_cache_versions = 4;
  // Folder that relative paths in the scenario are resolved against.
  // Default: ".".
  std::string scenario_dir = ".";
  // Client folders (data/client_folder.h) whose clients this worker serves
  // from their own data, for a server whose scenario has a client list
  // (deployment.clients_file): it registers their names, checks each folder
  // against the run's model and the list's counts, and trains only their
  // tasks. Default: empty = simulate any client from the scenario's dataset.
  std::vector<std::string> data_dirs;
  // The run's data already in this process's memory, built by BuildRunData
  // from the scenario `preloaded_scenario_text`: a worker that `fedsim run`
  // forked after loading the data trains from it instead of loading its
  // own, when the scenario the server hands out is exactly that text (and
  // data_dirs is empty). Must outlive RunWorker. Default: none.
  const RunData* preloaded_data = nullptr;
  std::string preloaded_scenario_text;
  // That text parsed (ParseScenarioText), if the caller has it: the worker
  // then does not parse the text the server sends when it is the same (on
  // the pfl recipe a parse took 3-4 ms of each forked worker's start, while
  // the server was starting the run). Must outlive RunWorker. Default: none.
  const config::Scenario* preloaded_scenario = nullptr;
  // Peer-to-peer decentralized runs (client/peer_node.h): where this
  // worker's Peer service listens ("host:port", port 0 = any free one), and
  // the host name other workers and the server dial it by ("" = the listen
  // address's host). A non-loopback address needs the run token. Empty
  // peer_listen = no Peer service: the worker then gets no clients of a
  // decentralized run. Default: "127.0.0.1:0".
  std::string peer_listen = "127.0.0.1:0";
  std::string peer_host;
  // Progress lines ("connected ...", warnings) go here; nullptr = quiet.
  // Default: nullptr.
  FILE* log = nullptr;
  // One line per task ("task 17 (client 3, from global@2): training", then
  // "pushed" or "dropped ..."); nullptr = none. Default: nullptr.
  FILE* task_log = nullptr;
  // Reported at Register, keyed "native" and "reproducible"; the server
  // refuses a worker whose fingerprint in the run's mode differs from its own
  // (see GrpcServerOptions). Default: empty = this binary's own on this host
  // (OwnNumericFingerprints(), runtime/model_setup.h).
  std::map<std::string, std::string> numeric_fingerprints;
  // TLS (the CA that signed the server's certificate; a client certificate
  // for mutual TLS) and the run token every call carries
  // (rpc/credentials.h). Default: plaintext, no token.
  ChannelSecurity security;
  // Times heartbeats, retries, timeouts and wall-clock emulation; must
  // outlive RunWorker. Default: SystemClock().
  Clock* clock = SystemClock();
};

// What a worker did, filled in whether RunWorker succeeds or not.
struct WorkerSummary {
  uint64_t worker_id = 0;             // the last id the server assigned
  uint64_t tasks_done = 0;            // results the server acknowledged
  uint64_t duplicates = 0;            // of those, acknowledged as duplicates
  uint64_t tasks_dropped = 0;         // leased but not reported (cancelled, reassigned, run over)
  uint64_t tasks_folded = 0;          // of tasks_done, those reported in pre-aggregated sums
  uint64_t sums_pushed = 0;           // pre-aggregated sums the server took (PushFolded)
  uint64_t models_fetched = 0;        // model downloads (cache misses)
  uint64_t bytes_fetched = 0;         // tensor payload bytes down
  uint64_t bytes_pushed = 0;          // tensor payload bytes up
  uint64_t bytes_shared = 0;          // of those, handed over in shared memory
  uint64_t bytes_fetched_shared = 0;  // of bytes_fetched, those from shared memory
  uint64_t bytes_from_peers = 0;      // client models fetched from other workers
  uint64_t bytes_to_peers = 0;        // trained models handed to backup workers
};

// Runs until the server says the run is finished (OK). Errors:
// InvalidArgument for bad options or a scenario this build cannot parse;
// Unavailable when the server cannot be reached within connect_timeout_s or
// stops answering for server_lost_timeout_s mid-run (the message names the
// address); the server's status when it refuses the worker (Unauthenticated:
// a missing or wrong run token) or an update for a reason a retry cannot
// fix; InvalidArgument / NotFound for bad TLS files; TaskRunner's errors. `summary` may be null.
absl::Status RunWorker(const WorkerOptions& options, WorkerSummary* summary = nullptr);

}  // namespace fedsim

#endif  // FEDSIM_CLIENT_WORKER_H_
