// AggregatorClient: the worker's side of the wire protocol (proto/fedsim.proto)
// as plain calls that return absl::Status. Models arrive in chunks that are
// checked and reassembled here (rpc/chunker.h); updates leave in chunks of at
// most kMaxChunkBytes with the header in the first one.
//
// Every call carries the run token (set_token) in its metadata, and every
// call after Register the worker's session (WorkerSession), without which the
// server does not know the worker.
//
// Used by the worker process (client/worker.h), `fedsim status`, the protocol
// tests and the transfer benchmark. A worker that `fedsim run` forked makes
// the same calls over a local link instead (rpc/local_link.h): the calls
// and their answers are the same, only the carrier differs.
//
// Thread safety: thread-safe; concurrent calls share one channel (gRPC
// multiplexes them over one HTTP/2 connection).
#ifndef FEDSIM_RPC_AGGREGATOR_CLIENT_H_
#define FEDSIM_RPC_AGGREGATOR_CLIENT_H_

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "core/exact_sum.h"
#include "core/model_ref.h"
#include "core/task.h"
#include "grpcpp/grpcpp.h"
#include "proto/fedsim.grpc.pb.h"
#include "rpc/local_link.h"
#include "rpc/shm_segment.h"
#include "rpc/wire.h"
#include "util/build_info.h"

namespace fedsim {

// An insecure channel to `address` ("host:port") with the wire channel
// arguments (no size limits, large flow-control windows). Does not connect
// yet. (rpc/credentials.h makes TLS channels.)
std::shared_ptr<grpc::Channel> NewWireChannel(const std::string& address);

// Who a worker is to the server after Register: its id (for logs) and its
// session, the secret that proves it.
struct WorkerSession {
  uint64_t worker_id = 0;
  std::string session;

  static WorkerSession Of(const wire::RegisterResponse& r) { return {r.worker_id(), r.session()}; }
};

// Puts the PushUpdate metadata (worker, session, task, and the tasks it
// would take with the answer when want_tasks > 0; rpc/auth.h) on a call.
void AddPushMetadata(grpc::ClientContext* context, const WorkerSession& worker, uint64_t task_id,
                     uint32_t want_tasks = 0);

// What a worker tells the server about itself at Register.
struct WorkerIdentity {
  // Shown in the server's logs. Default: "".
  std::string name;
  // Tasks it trains in parallel. Default: 1.
  uint32_t slots = 1;
  // Default: kProtocolVersion, the one this build speaks.
  uint32_t protocol_version = kProtocolVersion;
  // Default: BuildId(), the commit this binary was built from.
  std::string build_id = std::string(BuildId());
  // The numeric fingerprint in each mode, keyed "native" and "reproducible"
  // (see GrpcServerOptions::numeric_fingerprint). Default: empty.
  std::map<std::string, std::string> numeric_fingerprints;
  // The names of the client folders it brings (RegisterRequest.local_clients).
  // Default: empty = a simulation worker.
  std::vector<std::string> local_clients;
  // For each of local_clients: the examples its folder holds
  // (RegisterRequest.local_train_examples/local_test_examples). Default:
  // empty = not reported.
  std::vector<uint64_t> local_train_examples;
  std::vector<uint64_t> local_test_examples;
  // Where it trains (RegisterRequest.backend). Default: "cpu".
  std::string backend = "cpu";
  // Its Peer service (RegisterRequest.peer_address). Default: "" = none.
  std::string peer_address;
};

class AggregatorClient {
 public:
  // Chunks of PushUpdate carry ClampChunkBytes(chunk_bytes) bytes.
  explicit AggregatorClient(std::shared_ptr<grpc::Channel> channel,
                            size_t chunk_bytes = kMaxChunkBytes);
  // The Aggregator calls over a local link to the server (rpc/local_link.h)
  // instead of gRPC; RunStatus is not one of them (Unimplemented). A tensor
  // that does not go through shared memory goes whole, in one message. The
  // token and rpc timeout are unused: the link is private to the two
  // processes, and its calls end when the other process does.
  explicit AggregatorClient(std::shared_ptr<LinkClient> link);

  // Whether this client calls over a link whose other end is gone (the
  // server process ended): no call can succeed any more.
  bool link_closed() const { return link_ != nullptr && link_->closed(); }

  // Deadline for the short RPCs (Register, Heartbeat; GetTask gets its wait_s
  // on top). Measured by gRPC in real time. Default: 10 s.
  void set_rpc_timeout(absl::Duration timeout) { rpc_timeout_ = timeout; }
  // The run token sent with every call ("" = none). Default: "".
  void set_token(std::string token) { token_ = std::move(token); }

  // Errors are the server's statuses (see server/grpc_transport.h), or
  // Unavailable / DeadlineExceeded when the server cannot be reached.
  absl::StatusOr<wire::RegisterResponse> Register(const WorkerIdentity& identity);
  // Register({name, slots}) with this build's identity.
  absl::StatusOr<wire::RegisterResponse> Register(const std::string& worker_name, uint32_t slots);
  // `untrained`: GetTaskRequest.untrained, for a worker that pre-aggregates.
  absl::StatusOr<wire::GetTaskResponse> GetTask(const WorkerSession& worker, uint32_t max_tasks,
                                                double wait_s,
                                                std::optional<uint32_t> untrained = std::nullopt);
  absl::StatusOr<wire::HeartbeatResponse> Heartbeat(const WorkerSession& worker,
                                                    const std::vector<TaskId>& in_flight);

  // Downloads one model. DataLoss when the chunks name another model, are
  // not contiguous, or do not add up to the num_params they announce. After
  // UseSharedMemory, a model of its num_params comes through a slot of a
  // download segment of the same kind (rpc/shm_segment.h) while one is free;
  // when the server refuses the segment, this fetch and every later one
  // stream.
  absl::StatusOr<std::vector<float>> FetchModel(const WorkerSession& worker, const ModelRef& model);

  // What the server answered a push.
  struct Pushed {
    bool duplicate = false;  // an identical resend, acknowledged and ignored
    // Tasks leased with the answer (at most the want_tasks asked for).
    std::vector<wire::Task> tasks;
  };
  // Uploads one result and asks for up to `want_tasks` tasks with the
  // answer (PushUpdateResponse.tasks); see PushUpdate below.
  absl::StatusOr<Pushed> PushUpdateAndLease(const WorkerSession& worker, const TaskResult& result,
                                            uint32_t want_tasks);
  // The same for a result the caller shares: streamed, its delta goes into
  // gRPC's buffers without a copy, and gRPC holds a reference to `result`
  // for as long as it needs the bytes (a cancelled call may hold them after
  // this returns).
  absl::StatusOr<Pushed> PushUpdateAndLease(const WorkerSession& worker,
                                            std::shared_ptr<const TaskResult> result,
                                            uint32_t want_tasks);
  // A slot of PushFolded's shared-memory segment lent to a caller that
  // builds a sum in place (ExactSum::AssignInto, AddInto): PushFolded then
  // hands the sum over without copying it, and a worker's sum needs no
  // memory of its own (on the pfl recipe, 1.6 MB a round and its 391 page
  // faults in the first). The slot goes back to the segment when this is
  // destroyed, unless a push through it failed: the server may still be
  // reading it then, so it is never lent again (its values stay readable
  // here, for a push that streams them). A pushed slot is lent again only
  // once the server has let go of it (its hold word, rpc/shm_segment.h):
  // the server merges the sum from the slot itself.
  class SumSlot {
   public:
    SumSlot(SumSlot&& other) noexcept { *this = std::move(other); }
    SumSlot& operator=(SumSlot&& other) noexcept;
    ~SumSlot();

    // The sum's fixed-point values (ExactSum::values()).
    std::span<int64_t> values() const { return values_; }

   private:
    friend class AggregatorClient;
    SumSlot(std::shared_ptr<UpdateSegment> segment, uint32_t slot, size_t num_values);
    void GiveBack();  // a no-op for a slot a failed push retired

    std::shared_ptr<UpdateSegment> segment_;
    uint32_t slot_ = 0;
    std::span<int64_t> values_;
  };
  // A free slot for a sum of `num_values` values, the segment made now when
  // UseSharedMemory asked for one and it is not made yet; nullopt when sums
  // stream (no segment, or one for another model size) or every slot is
  // lent or in a push.
  std::optional<SumSlot> LendSumSlot(size_t num_values);

  // Several tasks of one fold group (TaskSpec::fold_group) trained by this
  // worker, their deltas pre-aggregated: `tasks` in ascending id with their
  // figures and empty deltas, and the exact sum of fold_weight * delta in
  // `in_slot` when it was built there, else in `sum`.
  struct FoldedBatch {
    uint64_t fold_id = 0;  // this worker's own number for the batch, > 0
    uint64_t group = 0;
    std::vector<TaskResult> tasks;
    ExactSum sum;
    std::optional<SumSlot> in_slot;

    std::span<const int64_t> values() const {
      return in_slot.has_value() ? std::span<const int64_t>(in_slot->values()) : sum.values();
    }
  };
  // Uploads a batch (PushFolded) and leases up to `want_tasks` tasks with
  // the answer. The sum goes through a slot of a second shared-memory
  // segment (slots of 2 * num_params floats' bytes and a hold word, one
  // more slot than the worker has) made like the updates'
  // one when UseSharedMemory was called: its own slot when it was built in
  // one (which a failed push retires, so that a retry streams it), else a
  // free slot it is copied into. Otherwise it streams in chunks of at most
  // chunk_bytes. Errors as PushUpdate's.
  absl::StatusOr<Pushed> PushFolded(const WorkerSession& worker, const FoldedBatch& batch,
                                    uint32_t want_tasks);
  // Uploads one result. Returns true when the server acknowledged it as a
  // duplicate of a result it already had. With an update segment set, a
  // delta of its size goes through a free slot of it (rpc/shm_segment.h);
  // when the server refuses the segment, this push and every later one
  // stream instead.
  absl::StatusOr<bool> PushUpdate(const WorkerSession& worker, const TaskResult& result);
  // Hands updates over in `segment` from now on (nullptr: stream them).
  // Only for a server that offered it (RegisterResponse.shared_memory_updates).
  void set_update_segment(std::shared_ptr<UpdateSegment> segment);
  // The same with a segment of `slots` updates of `num_params` floats made
  // at the first push of that size, so that a worker that never pushes one
  // (or is killed before) leaves nothing in /dev/shm. When it cannot be
  // made, `on_failure` (may be empty) hears why and updates stream.
  void UseSharedMemory(uint64_t num_params, uint32_t slots,
                       std::function<void(const absl::Status&)> on_failure);

  // The run's progress (needs no session, only the token).
  absl::StatusOr<wire::RunStatusResponse> RunStatus();

  // Tensor payload bytes moved so far by this client.
  uint64_t bytes_fetched() const { return bytes_fetched_.load(); }
  uint64_t bytes_pushed() const { return bytes_pushed_.load(); }
  // Of bytes_pushed, those handed over in shared memory.
  uint64_t bytes_shared() const { return bytes_shared_.load(); }
  // Of bytes_fetched, those that came in shared memory.
  uint64_t bytes_fetched_shared() const { return bytes_fetched_shared_.load(); }

 private:
  // Sets the token and, unless infinite, the deadline `timeout` from now.
  void Prepare(grpc::ClientContext* context, absl::Duration timeout) const;
  // One PushUpdate call: the delta streamed, or (segment != nullptr) in
  // `slot` of it already.
  // `owner` (may be null) keeps result alive: then the streamed delta is
  // not copied.
  absl::StatusOr<Pushed> Push(const WorkerSession& worker, const TaskResult& result,
                              std::shared_ptr<const void> owner, uint32_t want_tasks);
  grpc::Status PushOnce(const WorkerSession& worker, const TaskResult& result,
                        const std::shared_ptr<const void>& owner, const UpdateSegment* segment,
                        uint32_t slot, uint32_t want_tasks, wire::PushUpdateResponse* response);

  // Over the link (link_ set): the call's answer, or its status.
  absl::Status LinkCall(LinkMethod method, const google::protobuf::MessageLite& request,
                        google::protobuf::MessageLite* response) const {
    return link_->Call(method, request, response);
  }

  std::shared_ptr<grpc::Channel> channel_;  // null over a link
  std::shared_ptr<LinkClient> link_;        // null over gRPC
  std::unique_ptr<wire::Aggregator::Stub> stub_;
  // The tensor streams, called with raw buffers (rpc/raw_chunk.h); unset
  // over a link.
  const std::optional<grpc::internal::RpcMethod> fetch_method_;
  const std::optional<grpc::internal::RpcMethod> push_method_;
  size_t chunk_bytes_;
  absl::Duration rpc_timeout_ = absl::Seconds(10);
  std::string token_;
  std::atomic<uint64_t> bytes_fetched_{0};
  std::atomic<uint64_t> bytes_pushed_{0};
  std::atomic<uint64_t> bytes_shared_{0};
  std::atomic<uint64_t> bytes_fetched_shared_{0};
  absl::Mutex segment_mu_;
  std::shared_ptr<UpdateSegment> segment_ ABSL_GUARDED_BY(segment_mu_);
  // UseSharedMemory's segment, until it is made (slots 0 = none to make).
  uint64_t lazy_params_ ABSL_GUARDED_BY(segment_mu_) = 0;
  uint32_t lazy_slots_ ABSL_GUARDED_BY(segment_mu_) = 0;
  std::function<void(const absl::Status&)> lazy_failure_ ABSL_GUARDED_BY(segment_mu_);
  // *segment, made first when it is still to make (*lazy_slots > 0) and a
  // push of `values` values of lazy_params_ asks for it: slots of
  // `scale` x lazy_params_ floats. A failure is told to lazy_failure_ once.
  // With `hold_words`, the slots have them (UpdateSegment::Create).
  std::shared_ptr<UpdateSegment> LazySegmentLocked(std::shared_ptr<UpdateSegment>* segment,
                                                   uint32_t* lazy_slots, uint64_t values,
                                                   uint64_t scale, bool hold_words = false)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(segment_mu_);
  // A push through `slot` of `segment` failed with `status`: retires the slot
  // (the server may still be reading it) and returns whether the server
  // refused the segment itself, after which *current (when it is still
  // `segment`) is dropped so that later pushes stream.
  bool RetireAfterFailure(const absl::Status& status, const std::shared_ptr<UpdateSegment>& segment,
                          uint32_t slot, std::shared_ptr<UpdateSegment>* current);
  // FetchModel's download segment, made at its first fetch (slots 0 = none
  // to make).
  std::shared_ptr<UpdateSegment> download_segment_ ABSL_GUARDED_BY(segment_mu_);
  uint32_t download_lazy_slots_ ABSL_GUARDED_BY(segment_mu_) = 0;
  // One FetchModel call: streamed, or (segment != nullptr) into `slot` of it.
  absl::StatusOr<std::vector<float>> FetchOnce(const WorkerSession& worker, const ModelRef& model,
                                               UpdateSegment* segment, uint32_t slot);
  // PushFolded's segment, made at its first push (slots 0 = none to make),
  // with hold words and one slot more than the worker has: the server holds
  // a pushed sum's slot until its engine has merged the sum, while the next
  // sum is built.
  std::shared_ptr<UpdateSegment> sum_segment_ ABSL_GUARDED_BY(segment_mu_);
  uint32_t sum_lazy_slots_ ABSL_GUARDED_BY(segment_mu_) = 0;
  // PushFolded's segment when it is made (or can be made now) for sums of
  // `num_values` values; null when sums stream.
  std::shared_ptr<UpdateSegment> SumSegmentFor(size_t num_values);
  // One PushFolded call through `slot` of `segment`, which holds the sum:
  // true when sent; false when the server refused the segment (the slot is
  // retired and the sum is to stream); another failure (the slot retired)
  // is returned.
  absl::StatusOr<bool> PushFoldedThrough(const WorkerSession& worker, const FoldedBatch& batch,
                                         uint32_t want_tasks,
                                         const std::shared_ptr<UpdateSegment>& segment,
                                         uint32_t slot, wire::PushUpdateResponse* response);
  // One PushFolded call: the values streamed, or (segment != nullptr) in
  // `slot` of it already.
  grpc::Status PushFoldedOnce(const WorkerSession& worker, const FoldedBatch& batch,
                              std::span<const int64_t> values, uint32_t want_tasks,
                              const UpdateSegment* segment, uint32_t slot,
                              wire::PushUpdateResponse* response);
};

}  // namespace fedsim

#endif  // FEDSIM_RPC_AGGREGATOR_CLIENT_H_
