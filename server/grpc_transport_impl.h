// Internal to server/: the class behind StartGrpcTransport, shared by
// grpc_transport.cc (the Transport side, the RPC logic and the handlers) and
// grpc_transport_leases.cc (workers, sessions, leases, deadlines and the
// reaper). Nothing outside server/ includes it.
//
// Thread safety: see server/grpc_transport.h.
#ifndef FEDSIM_SERVER_GRPC_TRANSPORT_IMPL_H_
#define FEDSIM_SERVER_GRPC_TRANSPORT_IMPL_H_

#include <deque>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "proto/fedsim.grpc.pb.h"
#include "server/admission.h"
#include "server/grpc_transport.h"

namespace fedsim {
namespace grpc_transport_internal {

using grpc::ServerContext;

struct WorkerState {
  std::string name;
  std::string session;  // the secret every call of this worker carries
  uint32_t slots = 0;
  absl::Time last_seen;
  bool told_finished = false;
  std::unordered_set<TaskId> leased;  // leased to it and not yet received
};

struct TaskState {
  TaskSpec spec;
  uint64_t seq = 0;               // submit order
  uint64_t holder = 0;            // worker holding the current lease, 0 if none
  std::vector<uint64_t> lessees;  // every worker that ever held it
  bool queued = false;            // in pending_
  bool received = false;          // a valid result arrived
  bool cancelled = false;
  bool receiving = false;                        // a PushUpdate stream for it is being read
  uint64_t fingerprint = 0;                      // of the received result
  absl::Time leased_at;                          // of the current lease
  absl::Time deadline = absl::InfiniteFuture();  // of the current lease
  int expiries = 0;                              // leases of it that missed their deadline
};

// What the transport reads from the scenario text it hands out.
struct ScenarioFacts {
  std::string name;
  // The wall-clock emulation's time_scale (0 when the clock is virtual or
  // the text does not parse in this build).
  double wall_time_scale = 0;
};
ScenarioFacts ReadScenarioFacts(const std::string& scenario_text);

class GrpcTransportImpl;

// Thin handlers: decode, hand to the transport, encode. Every decision about
// state lives in GrpcTransportImpl.
class AggregatorService final : public wire::Aggregator::Service {
 public:
  explicit AggregatorService(GrpcTransportImpl* transport) : t_(transport) {}

  grpc::Status Register(ServerContext*, const wire::RegisterRequest* request,
                        wire::RegisterResponse* response) override;
  grpc::Status GetTask(ServerContext*, const wire::GetTaskRequest* request,
                       wire::GetTaskResponse* response) override;
  grpc::Status FetchModel(ServerContext*, const wire::FetchModelRequest* request,
                          grpc::ServerWriter<wire::ModelChunk>* writer) override;
  grpc::Status PushUpdate(ServerContext*, grpc::ServerReader<wire::UpdateChunk>* reader,
                          wire::PushUpdateResponse* response) override;
  grpc::Status Heartbeat(ServerContext*, const wire::HeartbeatRequest* request,
                         wire::HeartbeatResponse* response) override;
  grpc::Status RunStatus(ServerContext*, const wire::RunStatusRequest* request,
                         wire::RunStatusResponse* response) override;

 private:
  GrpcTransportImpl* t_;
};

class GrpcTransportImpl final : public GrpcTransport {
 public:
  GrpcTransportImpl(const GrpcServerOptions& options, std::string scenario_text,
                    uint64_t num_params, ModelStore* store)
      : options_(options),
        clock_(options.clock),
        timeout_(absl::Seconds(options.heartbeat_timeout_s)),
        scenario_text_(std::move(scenario_text)),
        num_params_(num_params),
        store_(store),
        service_(this),
        facts_(ReadScenarioFacts(scenario_text_)),
        started_at_(clock_->Now()),
        no_worker_since_(clock_->Now()),
        client_examples_(options.client_examples) {}

  ~GrpcTransportImpl() override;

  absl::Status Start();

  // ---------------------------------------------------------------- Transport

  void Submit(const TaskSpec& task) override;

  absl::StatusOr<TaskResult> Await(TaskId id) override;

  absl::StatusOr<std::optional<TaskResult>> AwaitAny(absl::Time deadline) override;

  void Cancel(TaskId id) override;

  void Shutdown() override;

  // ------------------------------------------------------------ GrpcTransport

  int port() const override { return port_; }
  std::string address() const override { return address_; }
  std::shared_ptr<grpc::Channel> InProcessChannel() override;
  GrpcTransportStats stats() const override;
  void SetClientExamples(std::vector<uint64_t> num_examples) override;
  void SetRunProgress(const RunProgress& progress) override;

  // ------------------------------------------------------- called by handlers

  // The run token check every Aggregator call passes first.
  absl::Status Authenticate(const ServerContext& context, const char* method);

  absl::Status Register(const wire::RegisterRequest& request, wire::RegisterResponse* response);

  absl::Status GetTask(const wire::GetTaskRequest& request, wire::GetTaskResponse* response);

  absl::Status FetchModel(const wire::FetchModelRequest& request,
                          grpc::ServerWriter<wire::ModelChunk>* writer);

  absl::Status PushUpdate(const ServerContext& context,
                          grpc::ServerReader<wire::UpdateChunk>* reader,
                          wire::PushUpdateResponse* response);

  absl::Status Heartbeat(const wire::HeartbeatRequest& request, wire::HeartbeatResponse* response);

  absl::Status RunStatus(wire::RunStatusResponse* response);

 private:
  static absl::Status UnknownWorker(uint64_t worker_id);

  void Log(const std::string& line) const;

  absl::Status Refuse(absl::Status status);

  // The worker just made contact: counts it as seen now (only with its own
  // session: nobody else can keep it alive), then drops every worker that has
  // been silent for too long (so a live caller never is) and takes back
  // leases past their deadline. Returns whether the worker is registered and
  // `session` is its session; a call that is refused for that
  // (`live_only`) is counted and logged as an unknown session.
  bool SeenLocked(uint64_t worker_id, const std::string& session, bool live_only = true)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  // Whether `session` is worker_id's, registered now or dropped for silence
  // (whose results of tasks it held are still taken).
  bool HeldSessionLocked(uint64_t worker_id, const std::string& session) const
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  void NoteUnknownSessionLocked(uint64_t worker_id) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  // Puts the server's own n_i for the update's client in num_examples.
  absl::Status UseServerExamplesLocked(DecodedUpdate* update) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  // Takes the task out of the pending queue and its holder's leases.
  void WithdrawLocked(TaskId id, TaskState* task) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  void LeaseLocked(uint64_t worker_id, WorkerState* worker, uint32_t max_tasks,
                   wire::GetTaskResponse* response) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  // The pushing worker's session is its (live or dropped), the task exists
  // and the worker held it: the checks a push passes before a byte is read.
  absl::Status CheckLeaseLocked(uint64_t worker, const std::string& session, TaskId id)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // CheckLeaseLocked, and the header's client and base model are the task's.
  absl::Status CheckHeaderLocked(const DecodedUpdate& update) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  absl::Status CommitUpdate(DecodedUpdate update, wire::PushUpdateResponse* response);

  // Waits for a change relevant to a result waiter, until `deadline`. Returns
  // Unavailable when no worker has been connected for no_worker_timeout_s.
  absl::Status WaitForResultLocked(absl::Time deadline) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  // Drops workers when they expire, and stops the server once Shutdown's
  // grace is over. Sleeps until the next expiry (or a state change), so it
  // costs nothing between heartbeats and acts exactly on time.
  void ReaperLoop();

  void DropSilentWorkersLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  // Puts tasks back at the front of the queue, in their submit order.
  void RequeueFrontLocked(std::vector<TaskId> requeue) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  // When the current lease of `task` (leased now) runs out; see
  // GrpcServerOptions::task_deadline_slack_s.
  absl::Time LeaseDeadlineLocked(const TaskState& task) const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  // Takes back every lease past its deadline (the holder stays a lessee: a
  // late result is still taken if it comes first) and re-queues its task.
  void ExpireLeasesLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const GrpcServerOptions options_;
  Clock* const clock_;
  const absl::Duration timeout_;  // heartbeat timeout
  const std::string scenario_text_;
  const uint64_t num_params_;
  ModelStore* const store_;
  AggregatorService service_;
  std::unique_ptr<grpc::Server> server_;
  const ScenarioFacts facts_;
  const absl::Time started_at_;
  int port_ = 0;
  std::string address_;
  std::string instance_;  // random per server process (RegisterResponse)
  std::thread reaper_;

  // Waits are conditions on state under mu_ (on the options' clock); the
  // event counters let a waiter sleep until "something it cares about changed".
  mutable absl::Mutex mu_;
  uint64_t result_events_ ABSL_GUARDED_BY(mu_) = 0;  // inbox, workers, cancel, shutdown
  uint64_t reaper_events_ ABSL_GUARDED_BY(mu_) = 0;  // workers joined, told, shutdown
  bool shutdown_ ABSL_GUARDED_BY(mu_) = false;
  absl::Time shutdown_at_ ABSL_GUARDED_BY(mu_);
  absl::Time no_worker_since_ ABSL_GUARDED_BY(mu_);
  uint64_t next_worker_id_ ABSL_GUARDED_BY(mu_) = 1;
  uint64_t next_seq_ ABSL_GUARDED_BY(mu_) = 0;
  std::unordered_map<uint64_t, WorkerState> workers_ ABSL_GUARDED_BY(mu_);
  // Sessions of workers dropped for silence (by worker id).
  std::unordered_map<uint64_t, std::string> dropped_sessions_ ABSL_GUARDED_BY(mu_);
  std::vector<uint64_t> client_examples_ ABSL_GUARDED_BY(mu_);  // n_i
  RunProgress progress_ ABSL_GUARDED_BY(mu_);
  absl::Time next_lease_deadline_ ABSL_GUARDED_BY(mu_) = absl::InfiniteFuture();
  double lease_seconds_sum_ ABSL_GUARDED_BY(mu_) = 0;  // of completed leases
  uint64_t leases_completed_ ABSL_GUARDED_BY(mu_) = 0;
  std::unordered_map<TaskId, TaskState> tasks_ ABSL_GUARDED_BY(mu_);
  std::deque<TaskId> pending_ ABSL_GUARDED_BY(mu_);
  std::unordered_map<TaskId, TaskResult> inbox_ ABSL_GUARDED_BY(mu_);
  std::deque<TaskId> arrival_order_ ABSL_GUARDED_BY(mu_);
  GrpcTransportStats stats_ ABSL_GUARDED_BY(mu_);
};

}  // namespace grpc_transport_internal
}  // namespace fedsim

#endif  // FEDSIM_SERVER_GRPC_TRANSPORT_IMPL_H_
