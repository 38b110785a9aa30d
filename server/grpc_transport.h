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
// Registration. A worker must speak this build's protocol version, and its
// build id and numeric fingerprint must equal the server's (options below):
// a different build or numeric mode gives different bits, and a run that
// mixes them is silently not reproducible. A mismatch is refused with
// FAILED_PRECONDITION naming both values and the fix, unless
// accept_mismatched_workers is set.
//
// Faults. Workers heartbeat every heartbeat_interval_s. A worker silent (no
// RPC at all) for heartbeat_timeout_s or longer is dropped and its leased,
// unfinished tasks go back to the FRONT of the pending queue, so other
// workers re-run them. Expiry is checked at the start of every RPC (the
// caller first counts as seen) and by a reaper thread that wakes when the
// next worker would expire, both on the options' clock.
// A task is a pure function of its spec, so a re-run gives the identical
// result and the run stays bit-identical; the first complete result from any
// worker that ever held the task is taken, later identical ones are
// acknowledged as duplicates.
//
// Update validation, in this order, each with its own status:
//   - NOT_FOUND: unknown task id.
//   - FAILED_PRECONDITION: the task was never leased to the pushing worker,
//     or the first chunk carries no header.
//   - INVALID_ARGUMENT: client id or base model differ from the task's;
//     size != num_params or chunk offsets not contiguous ("expected .. got ..");
//     a non-finite value (names the first bad index).
//   - ALREADY_EXISTS: a result for the task was received and this one differs.
//     An identical resend gets OK with duplicate = true and is counted once.
// A rejected update changes nothing; the transport keeps working.
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

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "core/clock.h"
#include "core/model_store.h"
#include "core/transport.h"
#include "grpcpp/grpcpp.h"
#include "rpc/build_info.h"

namespace fedsim {

struct GrpcServerOptions {
  // Address to listen on, "host:port"; port 0 picks a free port (see port()).
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
  // Cancelled within kInterruptPoll instead of waiting on for workers; the
  // engine then stops the run as interrupted. nullptr = never.
  // Default: nullptr.
  const std::atomic<bool>* interrupt = nullptr;
  // Worker drops (with the tasks they give back) and refused or mismatched
  // workers are logged here, one line each; nullptr = quiet. Default: nullptr.
  FILE* log = nullptr;
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
  uint64_t workers_connected = 0;  // now
};

class GrpcTransport : public Transport {
 public:
  ~GrpcTransport() override = default;

  // The port actually bound (useful with ":0").
  virtual int port() const = 0;
  // "host:port" as workers should dial it.
  virtual std::string address() const = 0;

  // A channel to this server without sockets, for tests.
  virtual std::shared_ptr<grpc::Channel> InProcessChannel() = 0;

  virtual GrpcTransportStats stats() const = 0;
};

// Starts the server. `scenario_text` (the resolved scenario) and `num_params`
// are what Register hands to workers. `store` must outlive the transport and
// hold every model a submitted task names (see Transport::Submit).
// Errors: InvalidArgument for bad options, Unavailable when the address
// cannot be bound.
absl::StatusOr<std::unique_ptr<GrpcTransport>> StartGrpcTransport(const GrpcServerOptions& options,
                                                                  std::string scenario_text,
                                                                  uint64_t num_params,
                                                                  ModelStore* store);

}  // namespace fedsim

#endif  // FEDSIM_SERVER_GRPC_TRANSPORT_H_
