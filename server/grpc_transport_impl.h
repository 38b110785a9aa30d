// Internal to server/: the class behind StartGrpcTransport, shared by
// grpc_transport.cc (the Transport side, the RPC logic and the handlers) and
// grpc_transport_leases.cc (workers, sessions, leases, deadlines and the
// reaper). Nothing outside server/ includes it.
//
// Thread safety: see server/grpc_transport.h.
#ifndef FEDSIM_SERVER_GRPC_TRANSPORT_IMPL_H_
#define FEDSIM_SERVER_GRPC_TRANSPORT_IMPL_H_

#include <deque>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <thread>
#include <unordered_map>
#include <unordered_set>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "proto/fedsim.grpc.pb.h"
#include "rpc/local_link.h"
#include "rpc/shm_segment.h"
#include "server/admission.h"
#include "server/folded_sum_reader.h"
#include "server/grpc_transport.h"
#include "server/peer_models.h"
#include "util/spare_buffers.h"
#include "util/tsan.h"

namespace fedsim {
namespace grpc_transport_internal {

using grpc::CallbackServerContext;
using grpc::ServerContextBase;

struct WorkerState {
  uint64_t id = 0;
  std::string name;
  std::string peer_address;  // its Peer service; "" = none
  std::string session;       // the secret every call of this worker carries
  uint32_t slots = 0;
  absl::Time last_seen;
  bool told_finished = false;
  std::unordered_set<TaskId> leased;  // leased to it and not yet received
  // Its fold tasks not yet trained, as its last GetTask said plus those
  // leased since (GetTaskRequest.untrained); nullopt when it does not say.
  std::optional<uint32_t> untrained;
  // Local-data runs: the client slots whose folders it brings, ascending.
  std::vector<uint32_t> holds;
  // Offered shared-memory updates at Register (it called from loopback),
  // and its segment once a push named it.
  bool shared_memory = false;
  std::shared_ptr<const MappedUpdateSegment> segment;
  // Its segment of pre-aggregated sums (slots of 2 * num_params floats).
  std::shared_ptr<const MappedUpdateSegment> sum_segment;
  // Its download segment, mapped read-write (FetchModelRequest.shm_*).
  std::shared_ptr<const MappedUpdateSegment> download_segment;
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
  bool folded = false;                           // its result came in a PushFolded sum
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

// A GetTask call. One the transport cannot answer at once is parked: it
// holds no thread, only this object, until the transport answers it (a task
// to lease, its worker dropped, the end of the run, or its deadline, which
// the poll timer watches) or the worker cancels it. Over gRPC (GrpcPollCall)
// or a local link (server/grpc_transport_link.cc).
class PollCall {
 public:
  PollCall(const wire::GetTaskRequest* get_task, wire::GetTaskResponse* reply)
      : request(get_task), response(reply) {}
  virtual ~PollCall() = default;

  // Sends `response` (status OK) or the status. The call may be deleted
  // before this returns: the transport does not touch it afterwards.
  virtual void Answer(const absl::Status& status) = 0;

  // Set before the call is parked; read and written under the transport's mu_.
  const wire::GetTaskRequest* const request;
  wire::GetTaskResponse* const response;
  absl::Time deadline;
  uint64_t key = 0;     // in GrpcTransportImpl::parked_; 0 = never parked
  absl::Status answer;  // what Answer sends
};

class GrpcPollCall final : public PollCall, public grpc::ServerUnaryReactor {
 public:
  GrpcPollCall(GrpcTransportImpl* transport, const wire::GetTaskRequest* get_task,
               wire::GetTaskResponse* reply)
      : PollCall(get_task, reply), transport_(transport) {}

  // Finish, after TsanRelease (util/tsan.h): the thread that answers the
  // call is not the one gRPC runs OnCancel or OnDone on.
  void Answer(const absl::Status& status) override;

  void OnCancel() override;
  void OnDone() override {
    TsanAcquire(this);
    delete this;
  }

 private:
  GrpcTransportImpl* const transport_;
};

// Thin handlers on gRPC's callback API: decode, hand to the transport,
// encode. Every decision about state lives in GrpcTransportImpl. No handler
// blocks; the streams are reactors (server/grpc_transport_service.cc). The
// tensor streams take raw buffers (rpc/raw_chunk.h): their bytes go between
// gRPC's slices and the model with one copy.
class AggregatorService final
    : public wire::Aggregator::WithRawCallbackMethod_FetchModel<
          wire::Aggregator::WithRawCallbackMethod_PushUpdate<wire::Aggregator::CallbackService>> {
 public:
  explicit AggregatorService(GrpcTransportImpl* transport) : t_(transport) {}

  grpc::ServerUnaryReactor* Register(CallbackServerContext* context,
                                     const wire::RegisterRequest* request,
                                     wire::RegisterResponse* response) override;
  grpc::ServerUnaryReactor* GetTask(CallbackServerContext* context,
                                    const wire::GetTaskRequest* request,
                                    wire::GetTaskResponse* response) override;
  grpc::ServerWriteReactor<grpc::ByteBuffer>* FetchModel(CallbackServerContext* context,
                                                         const grpc::ByteBuffer* request) override;
  grpc::ServerReadReactor<grpc::ByteBuffer>* PushUpdate(CallbackServerContext* context,
                                                        grpc::ByteBuffer* response) override;
  grpc::ServerReadReactor<wire::FoldedChunk>* PushFolded(
      CallbackServerContext* context, wire::PushUpdateResponse* response) override;
  grpc::ServerUnaryReactor* Heartbeat(CallbackServerContext* context,
                                      const wire::HeartbeatRequest* request,
                                      wire::HeartbeatResponse* response) override;
  grpc::ServerUnaryReactor* RunStatus(CallbackServerContext* context,
                                      const wire::RunStatusRequest* request,
                                      wire::RunStatusResponse* response) override;

 private:
  GrpcTransportImpl* t_;
};

class GrpcTransportImpl final : public GrpcTransport, public PeerDirectory {
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
        client_examples_(options.client_examples),
        admit_capacity_(options.local_client_names.empty() ? options.admit_clients : 0),
        local_data_(!options.local_client_names.empty() || admit_capacity_ > 0),
        local_names_(options.local_client_names) {
    for (uint32_t i = 0; i < local_names_.size(); ++i) slot_of_[local_names_[i]] = i;
    slot_holder_.assign(local_names_.size(), 0);
    waiting_noted_.assign(local_names_.size(), false);
  }

  ~GrpcTransportImpl() override;

  absl::Status Start();
  // Starts the gRPC listener on options_.listen_address (Start's part).
  absl::Status Listen();

  // ---------------------------------------------------------------- Transport

  void Submit(const TaskSpec& task) override;
  void BeginBatch() override;
  void EndBatch() override;

  absl::StatusOr<TaskResult> Await(TaskId id) override;

  absl::StatusOr<std::optional<TaskResult>> AwaitUntil(TaskId id, absl::Time deadline) override;

  std::optional<std::vector<bool>> ConnectedClients() const override;

  std::vector<std::pair<ClientId, bool>> TakeConnectionChanges() override;

  absl::StatusOr<std::optional<TaskResult>> AwaitAny(absl::Time deadline) override;

  void Cancel(TaskId id) override;

  void ReleaseWorkers() override;
  void Shutdown() override;
  std::vector<std::string> Backends() const override;
  // Peer-to-peer decentralized runs (server/peer_models.h); created at the
  // first call, once the clients' count is known.
  ClientModels* client_models() override;

  // ------------------------------------------- PeerDirectory (PeerModels)

  std::vector<PeerWorker> LivePeers() const override;
  PeerHomes Homes() const override;
  void SetHomes(PeerHomes homes) override;
  void DropWorker(uint64_t id, const std::string& why) override;
  absl::Status AwaitPeer(absl::Duration timeout) override;
  void LogLine(const std::string& line) const override { Log(line); }

  // ------------------------------------------------------------ GrpcTransport

  int port() const override { return port_; }
  void ServeLink(int fd, std::string name) override;
  std::string address() const override { return address_; }
  std::shared_ptr<grpc::Channel> InProcessChannel() override;
  GrpcTransportStats stats() const override;
  void SetClientExamples(std::vector<uint64_t> num_examples) override;
  void SetRunProgress(const ServerRunProgress& progress) override;
  FleetStatus fleet() const override;
  std::vector<LocalClient> LocalClients() const override;
  absl::Status AwaitClients(size_t k, absl::Time deadline, absl::Duration log_every) override;

  // ------------------------------------------------------- called by handlers

  size_t chunk_bytes() const { return options_.chunk_bytes; }
  uint64_t num_params() const { return num_params_; }

  // The run token check every Aggregator call passes first.
  absl::Status Authenticate(const ServerContextBase& context, const char* method);

  // `local`: the call came from this machine (loopback).
  absl::Status Register(const wire::RegisterRequest& request, bool local,
                        wire::RegisterResponse* response);

  // Answers `call` at once (finishing it on this thread) or parks it.
  void GetTask(PollCall* call);
  // The worker cancelled `call`: finishes it as cancelled if it is parked.
  void CancelPoll(PollCall* call);

  // The model a FetchModel stream sends, after the caller's session check
  // (server/grpc_transport_fetch.cc). With request.shm_slot > 0 it is
  // written into that slot of the worker's download segment (mapped
  // read-write once) and in_shm_slot is set: the stream then sends one
  // chunk without data. FailedPrecondition starting with kShmRefused when
  // the worker was not offered shared memory or the segment cannot be
  // mapped; InvalidArgument for a bad slot.
  struct FetchedModel {
    ModelStore::Params params;
    bool in_shm_slot = false;
  };
  absl::StatusOr<FetchedModel> FetchModel(const wire::FetchModelRequest& request);
  void CountBytesSent(uint64_t bytes);

  // PushUpdate, in three steps. BeginPush: the checks before a byte is read
  // (from what the stream's metadata claims, rpc/auth.h); on OK the stream holds the task's
  // `receiving` mark
  // (*claimed). CheckPushHeader: what the header must agree with. EndPush:
  // commits a complete update (when `status` is OK so far), releases the
  // mark and counts; returns the call's final status.
  absl::Status BeginPush(const PushClaim& claim, std::optional<TaskId>* claimed);
  absl::Status CheckPushHeader(const PushClaim& claim, DecodedUpdate* update);
  // A push that went through and wants tasks (claim.want_tasks) gets them
  // leased in the response, at most as many as the worker has slots.
  absl::Status EndPush(absl::Status status, const PushClaim& claim, std::optional<TaskId> claimed,
                       uint64_t bytes, DecodedUpdate* update, wire::PushUpdateResponse* response);

  // PushFolded (server/grpc_transport_folded.cc). CheckFoldedHeader: the
  // checks before the sum is read (the worker's session, each task leased to
  // it, of the header's fold group, with its client and base model).
  // EndFolded: takes a complete sum (when `status` is OK so far): every task
  // gets a result that shares it (TaskResult::folded). A sum one of whose
  // tasks already has a result (another worker's, after a lease expired)
  // cannot be split: it is refused (FailedPrecondition) and its other tasks
  // go back to the queue. Leases up to want_tasks with the answer.
  absl::Status CheckFoldedHeader(const wire::FoldedHeader& header);
  // A sum in shared memory (header.shm_slot > 0): maps the worker's sum
  // segment (once) and holds the slot (*held), whose values the engine then
  // reads in place. FailedPrecondition starting with kShmRefused when the
  // worker was not offered shared memory or the segment cannot be mapped;
  // InvalidArgument for a bad slot.
  absl::Status HoldFoldedSlot(const wire::FoldedHeader& header, std::shared_ptr<HeldSlot>* held);
  // num_params_ values to be overwritten (not zeroed first), reusing the
  // memory of a streamed sum the engine is done with (util/spare_buffers.h).
  std::vector<int64_t> SpareSumValuesSized() { return spare_sums_->TakeSized(num_params_); }
  // The values are `values`, or with `held` set the slot's.
  absl::Status EndFolded(absl::Status status, const wire::FoldedHeader& header,
                         std::vector<int64_t> values, std::shared_ptr<HeldSlot> held,
                         uint64_t bytes, wire::PushUpdateResponse* response);

  absl::Status Heartbeat(const wire::HeartbeatRequest& request, wire::HeartbeatResponse* response);

  absl::Status RunStatus(wire::RunStatusResponse* response);

 private:
  // A local link's calls (server/grpc_transport_link.cc), on its own thread
  // until the other end closes it or the transport is destroyed. Then the
  // worker that registered on it, when it is still connected and the run
  // is not over, is dropped at once: its process is gone.
  void ServeLinkLoop(const std::shared_ptr<LinkEnd>& end, const std::string& name);
  void AnswerLinkCall(const std::shared_ptr<LinkEnd>& end, LinkFrame frame, uint64_t* worker);
  void LinkPushUpdate(const LinkFrame& frame, wire::PushUpdateResponse* response,
                      absl::Status* status);
  void LinkPushFolded(const LinkFrame& frame, wire::PushUpdateResponse* response,
                      absl::Status* status);

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

  absl::Status CheckFoldedLocked(const wire::FoldedHeader& header)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::Status CommitFoldedLocked(const wire::FoldedHeader& header, ExactSum sum,
                                  std::shared_ptr<HeldSlot> held,
                                  wire::PushUpdateResponse* response)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // After a push went through: leases up to `want` tasks, at most as many
  // as the worker has slots, into `response`, when the worker is live with
  // `session`.
  void LeaseWithAnswerLocked(uint64_t worker_id, const std::string& session, uint32_t want,
                             wire::PushUpdateResponse* response) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  // A push whose delta is in shared memory: maps the worker's segment (once)
  // and hands it to the update. FailedPrecondition with kShmRefused when the
  // worker was not offered shared memory or the segment cannot be mapped.
  absl::Status AttachSegmentLocked(DecodedUpdate* update) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Worker `worker_id`'s segment `name` of slots of `slot_floats` floats,
  // kept in its WorkerState `member` (mapped at the first call naming it,
  // with `access`). FailedPrecondition starting with kShmRefused when the
  // worker was not offered shared memory or the segment cannot be mapped
  // (logged: the worker then streams its `what` instead).
  absl::StatusOr<std::shared_ptr<const MappedUpdateSegment>> WorkerSegmentLocked(
      uint64_t worker_id, std::shared_ptr<const MappedUpdateSegment> WorkerState::*member,
      const std::string& name, uint64_t slot_floats, MappedUpdateSegment::Access access,
      const char* what) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  // Waits for a change relevant to a result waiter, until `deadline`. Returns
  // Unavailable when no worker has been connected for no_worker_timeout_s.
  absl::Status WaitForResultLocked(absl::Time deadline) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  // Answers `call` if it can be answered now: the run is over (run_finished),
  // its worker is gone or not its session (UnknownWorker), a task can be
  // leased to it, it asks for none, or its deadline passed (then with what
  // there is, maybe nothing). Returns whether it was answered.
  bool AnswerPollLocked(PollCall* call) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Whether `worker` may train a task of `client`: always, unless the run's
  // clients bring their own data and the worker does not hold its folder.
  bool MayTrainLocked(const WorkerState& worker, ClientId client) const
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // A pending task `worker` may train.
  bool HasTaskForLocked(const WorkerState& worker) const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Local-data runs: the slots of `request`'s folders for a worker about to
  // get id `worker_id`, taken from their previous holders; refuses unknown
  // or repeated names and a worker of the wrong kind for the run.
  absl::StatusOr<std::vector<uint32_t>> ClaimClientsLocked(const wire::RegisterRequest& request,
                                                           uint64_t worker_id)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Local-data runs: logs once that `task` waits when no worker holds its
  // client's folder.
  void NoteWaitingClientLocked(const TaskSpec& task) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Frees the slots `worker` holds (it is being dropped).
  void ReleaseClientsLocked(uint64_t worker_id, const WorkerState& worker)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  FleetStatus FleetLocked() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // The names of the listed clients no connected worker holds, the first
  // `max` of them (`*more`: how many others).
  std::vector<std::string> MissingNamesLocked(size_t max, size_t* more) const
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // The same as text: "a, b, and 3 more", with the admissions still open.
  std::string MissingClientsLocked(size_t max) const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // The first 10 names of the clients admitted so far, then ", ..." when
  // there are more.
  std::string AdmittedNamesLocked() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  // Answers parked polls in arrival order and hands them to the poll timer to
  // finish: every one that can be answered now (`all`: after workers were
  // dropped, at shutdown), or only as many as there are queued tasks for
  // (after a Submit or a requeue, without looking at the others).
  void ServePollsLocked(bool all) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  // Takes an answered poll out of parked_ and poll_deadlines_ and hands it
  // to the poll timer.
  void UnparkAnsweredLocked(PollCall* call) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  // Finishes answered polls (outside mu_: Finish may run gRPC callbacks
  // inline) and answers parked ones at their deadline, on the options'
  // clock. Sleeps untimed while no poll is parked.
  void PollTimerLoop();

  // Drops workers when they expire, and stops the server once Shutdown's
  // grace is over. Sleeps until the next expiry (or a state change), so it
  // costs nothing between heartbeats and acts exactly on time.
  void ReaperLoop();

  void DropSilentWorkersLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Drops one worker now (silent, or failed a peer call): its leases go back
  // to the front of the queue, its clients to the workers holding their
  // backups (peer-to-peer runs). `why` ends the log line.
  void DropWorkerLocked(uint64_t id, const std::string& why) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Peer-to-peer runs: the clients whose home was `dead` move to their
  // backup's worker (or are lost when none is left).
  void ReassignHomesLocked(uint64_t dead) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Peer-to-peer runs: whether `worker` is client c's home; whether c's
  // model is lost (no home left).
  bool IsHomeLocked(ClientId c, uint64_t worker) const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  bool PeerClientLostLocked(ClientId c) const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Peer-to-peer runs: the Peer address of the worker holding the backup of
  // `task`'s client model ("" when none, or for other tasks).
  std::string PeerBackupLocked(const TaskSpec& task) const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

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
  std::thread poll_timer_;
  // Local links (ServeLink) and their threads.
  absl::Mutex links_mu_;
  std::vector<std::shared_ptr<LinkEnd>> links_ ABSL_GUARDED_BY(links_mu_);
  std::vector<std::thread> link_threads_ ABSL_GUARDED_BY(links_mu_);

  // Waits are conditions on state under mu_ (on the options' clock); the
  // event counters let a waiter sleep until "something it cares about changed".
  mutable absl::Mutex mu_;
  uint64_t result_events_ ABSL_GUARDED_BY(mu_) = 0;  // inbox, workers, cancel, shutdown
  uint64_t reaper_events_ ABSL_GUARDED_BY(mu_) = 0;  // workers joined, told, shutdown
  bool shutdown_ ABSL_GUARDED_BY(mu_) = false;
  // Set by ReleaseWorkers and by Shutdown: polls and heartbeats say
  // run_finished and no task is leased. After ReleaseWorkers alone the rest
  // of the transport works on until Shutdown.
  bool released_ ABSL_GUARDED_BY(mu_) = false;
  absl::Time shutdown_at_ ABSL_GUARDED_BY(mu_);
  absl::Time no_worker_since_ ABSL_GUARDED_BY(mu_);
  uint64_t next_worker_id_ ABSL_GUARDED_BY(mu_) = 1;
  uint64_t next_seq_ ABSL_GUARDED_BY(mu_) = 0;
  std::unordered_map<uint64_t, WorkerState> workers_ ABSL_GUARDED_BY(mu_);
  // Sessions of workers dropped for silence (by worker id).
  std::unordered_map<uint64_t, std::string> dropped_sessions_ ABSL_GUARDED_BY(mu_);
  std::vector<uint64_t> client_examples_ ABSL_GUARDED_BY(mu_);  // n_i
  // Local-data runs (GrpcServerOptions::local_client_names, or admit_clients
  // names admitted so far): the names, the slot of each name, the worker
  // holding each slot (0 = none) and, when admitted, its test examples.
  const size_t admit_capacity_;  // 0 = not admitting
  const bool local_data_;        // a list or admission: workers bring data
  std::vector<std::string> local_names_ ABSL_GUARDED_BY(mu_);
  absl::flat_hash_map<std::string, uint32_t> slot_of_ ABSL_GUARDED_BY(mu_);
  std::vector<uint64_t> local_test_examples_ ABSL_GUARDED_BY(mu_);
  // Slots that became held or free, in order, until TakeConnectionChanges.
  std::vector<std::pair<ClientId, bool>> connection_changes_ ABSL_GUARDED_BY(mu_);
  std::vector<uint64_t> slot_holder_ ABSL_GUARDED_BY(mu_);
  // Whether the server said that a task waits for this slot's worker (once
  // until a worker claims the slot again).
  std::vector<bool> waiting_noted_ ABSL_GUARDED_BY(mu_);
  ServerRunProgress progress_ ABSL_GUARDED_BY(mu_);
  // Peer-to-peer runs: each client's home and backup worker (empty until
  // PeerModels assigns them), and PeerModels itself (engine thread only).
  std::vector<uint64_t> home_ ABSL_GUARDED_BY(mu_);
  std::vector<uint64_t> backup_ ABSL_GUARDED_BY(mu_);
  std::unique_ptr<PeerModels> peer_models_;
  absl::Time next_lease_deadline_ ABSL_GUARDED_BY(mu_) = absl::InfiniteFuture();
  // What the reaper sleeps until (InfinitePast while it is awake): only an
  // earlier lease deadline needs to wake it.
  absl::Time reaper_wakes_at_ ABSL_GUARDED_BY(mu_) = absl::InfinitePast();
  double lease_seconds_sum_ ABSL_GUARDED_BY(mu_) = 0;  // of completed leases
  uint64_t leases_completed_ ABSL_GUARDED_BY(mu_) = 0;
  std::unordered_map<TaskId, TaskState> tasks_ ABSL_GUARDED_BY(mu_);
  std::deque<TaskId> pending_ ABSL_GUARDED_BY(mu_);
  std::unordered_map<TaskId, TaskResult> inbox_ ABSL_GUARDED_BY(mu_);
  uint64_t next_folded_id_ ABSL_GUARDED_BY(mu_) = 1;
  // The memory of streamed sums the engine has folded (FoldedSum's deleter
  // gives it back), for the next sums read; shared, because a FoldedSum may
  // outlive the transport. Four: two rounds' sums from two workers. (Sums
  // in shared memory are read in place: HoldFoldedSlot.)
  const std::shared_ptr<SpareBuffers<int64_t>> spare_sums_ =
      std::make_shared<SpareBuffers<int64_t>>(4);
  std::deque<TaskId> arrival_order_ ABSL_GUARDED_BY(mu_);
  GrpcTransportStats stats_ ABSL_GUARDED_BY(mu_);
  // RegisterRequest.backend of every worker that registered.
  std::set<std::string> backends_ ABSL_GUARDED_BY(mu_);
  // Parked GetTask calls by arrival and by deadline; answered ones waiting for the poll
  // timer to Finish them; what wakes the timer.
  uint64_t next_poll_key_ ABSL_GUARDED_BY(mu_) = 1;
  std::map<uint64_t, PollCall*> parked_ ABSL_GUARDED_BY(mu_);
  // Between BeginBatch and EndBatch: polls that would lease are parked, and
  // EndBatch serves them with the whole batch queued, when the batch brought
  // tasks or held a poll back (most engine events submit nothing).
  bool batch_open_ ABSL_GUARDED_BY(mu_) = false;
  bool serve_at_batch_end_ ABSL_GUARDED_BY(mu_) = false;
  // (deadline, key) of every parked poll.
  std::set<std::pair<absl::Time, uint64_t>> poll_deadlines_ ABSL_GUARDED_BY(mu_);
  std::vector<PollCall*> answered_ ABSL_GUARDED_BY(mu_);
  size_t polls_finishing_ ABSL_GUARDED_BY(mu_) = 0;  // taken from answered_, Finish running
  uint64_t poll_events_ ABSL_GUARDED_BY(mu_) = 0;
  bool poll_timer_stop_ ABSL_GUARDED_BY(mu_) = false;
};

}  // namespace grpc_transport_internal
}  // namespace fedsim

#endif  // FEDSIM_SERVER_GRPC_TRANSPORT_IMPL_H_
