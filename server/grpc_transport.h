// GrpcTransport: the Transport that hands tasks to worker processes over gRPC
// (the Aggregator service of proto/fedsim.proto).
//
// Workers pull. The engine Submit()s tasks into a FIFO pending queue; a
// worker's GetTask long-poll leases up to its free slots from the front; the
// worker fetches the task's base model (a ModelRef) from the ModelStore
// (streamed in chunks of at most 1 MiB, rpc/chunker.h), trains, and pushes
// the update back in chunks. The server validates every update before it
// changes anything and puts valid ones into an inbox read by Await() /
// AwaitAny().
//
// Access (issue 13). The socket is a Listener (server/listener.h): the
// listen policy (non-loopback needs TLS and a token, or --insecure), TLS or
// mutual TLS, no SO_REUSEPORT, every received message capped at one chunk
// plus header, grpc.health.v1 and reflection. With a run token, every
// Aggregator call must carry it (rpc/auth.h); a missing or wrong one gets
// UNAUTHENTICATED and a log line that names the peer, never the token.
//
// Registration. A worker must speak this build's protocol version, and its
// build id and numeric fingerprint must equal the server's (options below):
// a different build or numeric mode gives different bits, and a run that
// mixes them is silently not reproducible. A mismatch is refused with
// FAILED_PRECONDITION naming both values and the fix, unless
// accept_mismatched_workers is set. A registered worker gets a session, 128
// random bits; every later call must carry its worker id AND that session,
// else the worker is unknown (FAILED_PRECONDITION): worker ids are small
// counters, so the session is what proves who calls. Heartbeats and long
// polls count only from the live session; a worker dropped for silence may
// still fetch models and push results of tasks it held, with its old
// session, until it registers again.
//
// Faults. Workers heartbeat every heartbeat_interval_s. A worker silent (no
// RPC at all) for heartbeat_timeout_s or longer is dropped and its leased,
// unfinished tasks go back to the FRONT of the pending queue, so other
// workers re-run them. A lease also has a deadline (task_deadline_* below):
// a worker that heartbeats but never answers loses the task at its deadline,
// and the task goes back to the front of the queue the same way (logged;
// stats().leases_expired). Expiry is checked at the start of every RPC (the
// caller first counts as seen) and by a reaper thread that wakes when the
// next worker or lease would expire, both on the options' clock.
// A task is a pure function of its spec, so a re-run gives the identical
// result and the run stays bit-identical; the first complete result from any
// worker that ever held the task is taken, later identical ones are
// acknowledged as duplicates.
//
// Update validation, in this order, each with its own status. Before a byte
// of the stream is read, from its metadata (worker, session, task; gRPC
// 1.51 buffers a whole message once the handler reads one, whatever its
// size):
//   - FAILED_PRECONDITION: no such metadata, unknown worker or wrong session.
//   - NOT_FOUND: unknown task id.
//   - FAILED_PRECONDITION: the task was never leased to the pushing worker.
//   - RESOURCE_EXHAUSTED: another update for the same task is arriving now
//     (so a worker makes the server hold at most one model-sized buffer per
//     task it holds).
// Then, from the stream:
//   - RESOURCE_EXHAUSTED: any message over MaxReceiveMessageBytes().
//   - FAILED_PRECONDITION: the first chunk carries no header;
//     INVALID_ARGUMENT: the header names another worker or task than the
//     metadata, or another client or base model than the task's, or the
//     server has no n_i for the client; more than kMaxUpdateMetrics metrics
//     or a non-finite one.
//   - INVALID_ARGUMENT: size != num_params or chunk offsets not contiguous
//     ("expected .. got .."); a non-finite value (names the first bad index).
//   - ALREADY_EXISTS: a result for the task was received and this one differs.
//     An identical resend gets OK with duplicate = true and is counted once.
// A rejected update changes nothing; the
// transport keeps working. An accepted update's num_examples is the
// server's own n_i for its client (client_examples), never the worker's.
//
// Threads. The service runs on gRPC's callback API: no handler blocks, so a
// waiting worker holds no thread. A GetTask long poll that cannot be answered
// at once is parked (an object, no thread) until a task is queued for it,
// its worker is dropped, the run ends or its wait is over; one poll-timer
// thread, on the options' clock, answers polls at their deadline. The model
// and update streams write or read one chunk at a time from gRPC's callback
// threads. So the server's threads are gRPC's own (a fixed pool) plus the
// reaper and the poll timer, whatever the number of workers: see
// bench/many_workers_bench.cc for 1,000 workers.
//
// Thread safety: thread-safe. The Transport methods are meant for the engine
// thread, the RPC handlers run on gRPC's threads; all shared state is guarded
// by one mutex and the handlers do no math beyond decoding (the finiteness
// check and the fingerprint run outside the lock).
#ifndef FEDSIM_SERVER_GRPC_TRANSPORT_H_
#define FEDSIM_SERVER_GRPC_TRANSPORT_H_

#include <atomic>
#include <cstdint>
#include <cstdio>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "core/clock.h"
#include "core/model_store.h"
#include "core/transport.h"
#include "grpcpp/grpcpp.h"
#include "rpc/credentials.h"
#include "util/build_info.h"

namespace fedsim {

struct GrpcServerOptions {
  // Address to listen on, "host:port"; port 0 picks a free port (see port()).
  // Empty: no gRPC listener at all, for a transport whose workers all call
  // over local links (ServeLink); address() is then "" and port() 0.
  // Default: "127.0.0.1:0".
  std::string listen_address = "127.0.0.1:0";
  // Told to workers at Register: how often they heartbeat. Default: 0.5 s.
  double heartbeat_interval_s = 0.5;
  // A worker silent (no RPC at all) for this long is dropped and its leased
  // tasks are re-queued. Default: 5 s.
  double heartbeat_timeout_s = 5.0;
  // Tensor bytes per streamed chunk; clamped to (0, kMaxChunkBytes].
  // Default: 1 MiB.
  size_t chunk_bytes = size_t{1} << 20;
  // Upper bound on one GetTask long poll, whatever wait_s the worker asks for.
  // Default: 10 s.
  double long_poll_max_wait_s = 10.0;
  // Await/AwaitAny return Unavailable once no worker has been connected for
  // this long while they wait. Default: 300 s.
  double no_worker_timeout_s = 300.0;
  // After Shutdown the server keeps answering (run_finished) until every
  // registered worker has heard it or this much time has passed. Default: 2 s.
  double shutdown_grace_s = 2.0;
  // After Shutdown the server keeps answering (run_finished) for at least
  // this long even when every registered worker has heard it, so that
  // workers still retrying a crashed server's address reach the resumed one
  // before it exits; the grace above counts from the end of this linger.
  // `fedsim server --resume` sets it. Default: 0 s.
  double end_linger_s = 0.0;
  // Returned to workers in RegisterResponse.run_id. Default: "".
  std::string run_id;
  // The run's build id and numeric fingerprint: a worker must report the
  // same values at Register. Defaults: BuildId() (this binary's commit) and "".
  std::string build_id = std::string(BuildId());
  std::string numeric_fingerprint;
  // The run's numeric mode, the key under which a worker's fingerprint is
  // compared. Default: "native".
  std::string numeric_mode = "native";
  // Take workers whose build id or numeric fingerprint differ (logged as a
  // warning) instead of refusing them. Default: false.
  bool accept_mismatched_workers = false;
  // Times heartbeats, long polls, Await deadlines and the shutdown grace;
  // must outlive the transport. Tests pass a FakeClock. AwaitAny's deadline
  // is on this clock too. Default: SystemClock().
  Clock* clock = SystemClock();
  // When this flag turns true (Ctrl-C, SIGTERM), Await and AwaitAny return
  // Cancelled within 100 ms instead of waiting on for workers; the engine
  // then stops the run as interrupted. nullptr = never. Default: nullptr.
  const std::atomic<bool>* interrupt = nullptr;
  // Offer workers that register from this machine (loopback) to hand their
  // updates over in shared memory instead of the socket (rpc/shm_segment.h).
  // Default: true.
  bool shared_memory_updates = true;
  // Worker drops (with the tasks they give back), expired leases, refused
  // or mismatched workers and refused calls are logged here, one line each;
  // nullptr = quiet. Default: nullptr.
  FILE* log = nullptr;

  // TLS: the server's certificate and key, and for mutual TLS the CA of the
  // workers' certificates (server/listener.h). Default: plaintext.
  ServerSecurity security;
  // The run token every Aggregator call must carry; "" = none. Read it with
  // ReadRunToken (rpc/auth.h), never from a flag. Default: "".
  std::string token;
  // Listen on an address other than loopback without TLS and a token.
  // Default: false (refused, see CheckListenPolicy).
  bool insecure = false;

  // n_i of every client (index = client id), by the server's own data: the
  // num_examples an accepted update carries, whatever the worker sent. An
  // update for a client without an entry is refused. May also be set later
  // with SetClientExamples, before the first task is submitted.
  // Default: empty.
  std::vector<uint64_t> client_examples;

  // A run whose clients bring their own data (scenario
  // deployment.clients_file): client i is the client folder named
  // local_client_names[i]. Only workers that bring folders register (each
  // name at most once at a time: a worker that registers a name again takes
  // it over, as a restarted client does), and a client's tasks go only to
  // the worker that holds its folder; while none does, they wait.
  // Default: empty = any worker trains any client.
  std::vector<std::string> local_client_names;

  // A run that admits its clients by name instead (scenario
  // deployment.admit_clients; local_client_names empty): the first
  // `admit_clients` distinct folder names that workers bring take client
  // slots 0, 1, ... in the order they register, with the example counts
  // the worker reports (their n_i, unless SetClientExamples replaces them).
  // A name seen again keeps its slot (a restarted client), with the same
  // training count or it is refused; further names are refused.
  // LocalClients() lists those admitted. Default: 0 = no admission.
  size_t admit_clients = 0;

  // A lease's deadline, on the options' clock, from the moment it is leased:
  //   (task_deadline_slack_s + task_deadline_factor * expected) * 2^k
  // where expected = max(the task's scripted duration times the scenario's
  // wall-clock time_scale (a wall-clock emulation sleeps that long), the
  // mean lease-to-result time of the results received so far), and k = how
  // many times the task's lease expired before (at most 10). A late result
  // from an expired lease is still taken if it comes first.
  // task_deadline_slack_s = 0 disables deadlines. Defaults: 120 s and 4.
  double task_deadline_slack_s = 120.0;
  double task_deadline_factor = 4.0;
};

// The run's progress as the engine last reported it (SetRunProgress), for
// the RunStatus RPC (`fedsim status`).
struct ServerRunProgress {
  uint64_t commits = 0;
  uint64_t max_commits = 0;  // 0 = no such limit
  double virtual_time_s = 0;
  bool has_accuracy = false;
  double last_accuracy = 0;
};

// A client whose worker brings its data: its folder's name and examples.
struct LocalClient {
  std::string name;
  uint64_t train_examples = 0;
  uint64_t test_examples = 0;  // known for admitted clients; 0 otherwise
};

// Who is connected and what they are doing now, for progress lines.
struct FleetStatus {
  uint32_t workers_connected = 0;
  // Local-data runs (GrpcServerOptions::local_client_names): the listed
  // clients and how many of them a connected worker holds. 0 otherwise.
  uint32_t clients_total = 0;
  uint32_t clients_connected = 0;
  uint32_t tasks_in_flight = 0;  // leased to a worker, no result yet
  uint32_t tasks_pending = 0;    // waiting for a worker
  // The lease held longest now (the slowest client at the moment): its
  // client's name (local-data runs) or "client N", and the seconds since it
  // was leased. Empty when nothing is leased.
  std::string slowest_client;
  double slowest_s = 0;
};

// Counters since start. Byte counts are tensor payload bytes.
struct GrpcTransportStats {
  uint64_t bytes_sent = 0;      // FetchModel chunks
  uint64_t bytes_received = 0;  // PushUpdate chunks (rejected ones included)
  uint64_t updates_accepted = 0;
  uint64_t duplicates = 0;      // identical resends acknowledged
  uint64_t rejected = 0;        // updates refused with an error status
  uint64_t discarded = 0;       // results of cancelled tasks, dropped
  uint64_t tasks_requeued = 0;  // leases returned after a worker timed out
  uint64_t workers_registered = 0;
  uint64_t workers_dropped = 0;
  uint64_t workers_connected = 0;     // now
  uint64_t leases_expired = 0;        // tasks taken back at their deadline
  uint64_t unauthenticated = 0;       // calls refused for a missing or wrong token
  uint64_t unknown_sessions = 0;      // calls refused for an unknown worker or session
  uint64_t num_examples_ignored = 0;  // updates whose worker-sent count differed from n_i
  uint64_t updates_arriving = 0;      // now: PushUpdate streams past their header check
  uint64_t polls_parked = 0;          // now: GetTask long polls waiting for a task
  uint64_t folded_sums = 0;           // PushFolded sums taken (their tasks count as updates)
  uint64_t folded_overlaps = 0;       // PushFolded sums refused: a task had its result already
  bool workers_released = false;      // ReleaseWorkers or Shutdown: workers are told to exit
};

// More tasks than this in one PushFolded are refused.
inline constexpr int kMaxFoldedTasks = 1024;

// More metrics than this in one update are refused.
inline constexpr int kMaxUpdateMetrics = 256;

class GrpcTransport : public Transport {
 public:
  ~GrpcTransport() override = default;

  // The port actually bound (useful with ":0"); 0 without a listener.
  virtual int port() const = 0;
  // "host:port" as workers should dial it; "" without a listener.
  virtual std::string address() const = 0;

  // A channel to this server without sockets, for tests; null without a
  // listener.
  virtual std::shared_ptr<grpc::Channel> InProcessChannel() = 0;

  // Serves the Aggregator calls of a local link (rpc/local_link.h) on `fd`,
  // one end of a socket pair whose other end a worker this process forked
  // holds, on a thread of its own; takes ownership of fd. The link carries
  // no token: whoever holds its other end is trusted, as the process that
  // made it. A worker registered on it counts as on this machine (shared
  // memory), and is dropped as soon as the link closes before the run is
  // over. `name` is for the log.
  virtual void ServeLink(int fd, std::string name) = 0;

  virtual GrpcTransportStats stats() const = 0;

  // Replaces GrpcServerOptions::client_examples (see there).
  virtual void SetClientExamples(std::vector<uint64_t> num_examples) = 0;
  // What RunStatus reports about the run (engine thread, any time).
  virtual void SetRunProgress(const ServerRunProgress& progress) = 0;

  virtual FleetStatus fleet() const = 0;

  // Local-data runs: the clients by slot (admitted so far, when admitting).
  virtual std::vector<LocalClient> LocalClients() const = 0;

  // Local-data runs: blocks until at least `k` listed clients have a
  // connected worker, logging who is still missing (at most every
  // `log_every`). OK at once for other runs. Errors: DeadlineExceeded at
  // `deadline`, naming the clients still missing and what to start;
  // Cancelled when the options' interrupt flag turns true.
  virtual absl::Status AwaitClients(size_t k, absl::Time deadline,
                                    absl::Duration log_every = absl::Seconds(10)) = 0;
};

// Starts the server. `scenario_text` (the resolved scenario) and `num_params`
// are what Register hands to workers. `store` must outlive the transport and
// hold every model a submitted task names (see Transport::Submit).
// Errors: InvalidArgument for bad options, address or TLS files;
// FailedPrecondition from the listen policy; Unavailable when the address
// cannot be bound (in use, not local).
absl::StatusOr<std::unique_ptr<GrpcTransport>> StartGrpcTransport(const GrpcServerOptions& options,
                                                                  std::string scenario_text,
                                                                  uint64_t num_params,
                                                                  ModelStore* store);

}  // namespace fedsim

#endif  // FEDSIM_SERVER_GRPC_TRANSPORT_H_
