#include "server/grpc_transport.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <deque>
#include <span>
#include <thread>
#include <unordered_map>
#include <unordered_set>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "proto/fedsim.grpc.pb.h"
#include "server/wire.h"

namespace fedsim {
namespace {

using grpc::ServerContext;

struct WorkerState {
  std::string name;
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
  uint64_t fingerprint = 0;       // of the received result
};

// Index of the first NaN or infinity in v, or v.size(). A branch-free scan
// over blocks (the compiler vectorizes it) and a slow look only at a bad block.
size_t FirstNonFinite(std::span<const float> v) {
  constexpr uint32_t kExponent = 0x7f800000u;
  constexpr size_t kBlock = 1024;
  for (size_t start = 0; start < v.size(); start += kBlock) {
    const size_t end = std::min(v.size(), start + kBlock);
    uint32_t any = 0;
    for (size_t i = start; i < end; ++i) {
      uint32_t bits;
      std::memcpy(&bits, &v[i], sizeof(bits));
      any |= static_cast<uint32_t>((bits & kExponent) == kExponent);
    }
    if (any != 0) {
      for (size_t i = start; i < end; ++i) {
        if (!std::isfinite(v[i])) return i;
      }
    }
  }
  return v.size();
}

// A result that passed every check that needs no shared state.
struct DecodedUpdate {
  uint64_t worker = 0;
  TaskResult result;
  uint64_t fingerprint = 0;
};

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

 private:
  GrpcTransportImpl* t_;
};

class GrpcTransportImpl final : public GrpcTransport {
 public:
  GrpcTransportImpl(const GrpcServerOptions& options, std::string scenario_text,
                    uint64_t num_params, ModelStore* store)
      : options_(options),
        scenario_text_(std::move(scenario_text)),
        num_params_(num_params),
        store_(store),
        service_(this),
        no_worker_since_(absl::Now()) {}

  ~GrpcTransportImpl() override {
    Shutdown();
    if (reaper_.joinable()) reaper_.join();
    if (server_ != nullptr) {
      server_->Shutdown(std::chrono::system_clock::now() + std::chrono::milliseconds(200));
      server_->Wait();
    }
  }

  absl::Status Start() {
    grpc::ServerBuilder builder;
    builder.SetMaxReceiveMessageSize(-1);
    builder.SetMaxSendMessageSize(-1);
    for (const auto& [name, value] : WireIntArguments()) builder.AddChannelArgument(name, value);
    builder.AddListeningPort(options_.listen_address, grpc::InsecureServerCredentials(),
                             &port_);
    builder.RegisterService(&service_);
    server_ = builder.BuildAndStart();
    if (server_ == nullptr || port_ == 0) {
      return absl::UnavailableError(absl::StrCat("cannot listen on ", options_.listen_address,
                                                 " (address in use or not local?)"));
    }
    std::string host = options_.listen_address.substr(0, options_.listen_address.rfind(':'));
    address_ = absl::StrCat(host, ":", port_);
    reaper_ = std::thread([this] { ReaperLoop(); });
    return absl::OkStatus();
  }

  // ---------------------------------------------------------------- Transport

  void Submit(const TaskSpec& task) override {
    absl::MutexLock lock(&mu_);
    TaskState& state = tasks_[task.id];
    state = TaskState{};
    state.spec = task;
    state.seq = next_seq_++;
    state.queued = true;
    pending_.push_back(task.id);
    task_cv_.SignalAll();
  }

  absl::StatusOr<TaskResult> Await(TaskId id) override {
    absl::MutexLock lock(&mu_);
    auto task = tasks_.find(id);
    if (task == tasks_.end()) {
      return absl::NotFoundError(absl::StrCat("Await: task ", id, " was never submitted"));
    }
    while (true) {
      auto it = inbox_.find(id);
      if (it != inbox_.end()) {
        TaskResult result = std::move(it->second);
        inbox_.erase(it);
        return result;
      }
      if (shutdown_) return absl::CancelledError("transport shut down");
      if (task->second.cancelled) {
        return absl::FailedPreconditionError(absl::StrCat("Await: task ", id, " was cancelled"));
      }
      absl::Status idle = WaitForResultLocked(absl::InfiniteFuture());
      if (!idle.ok()) return idle;
    }
  }

  absl::StatusOr<std::optional<TaskResult>> AwaitAny(absl::Time deadline) override {
    absl::MutexLock lock(&mu_);
    while (true) {
      while (!arrival_order_.empty()) {
        TaskId id = arrival_order_.front();
        arrival_order_.pop_front();
        auto it = inbox_.find(id);
        if (it == inbox_.end()) continue;  // taken by Await or cancelled
        TaskResult result = std::move(it->second);
        inbox_.erase(it);
        return std::optional<TaskResult>(std::move(result));
      }
      if (shutdown_) return absl::CancelledError("transport shut down");
      if (absl::Now() >= deadline) return std::optional<TaskResult>();
      absl::Status idle = WaitForResultLocked(deadline);
      if (!idle.ok()) return idle;
    }
  }

  void Cancel(TaskId id) override {
    absl::MutexLock lock(&mu_);
    auto it = tasks_.find(id);
    if (it == tasks_.end()) return;
    TaskState& task = it->second;
    task.cancelled = true;
    if (task.queued) {
      pending_.erase(std::find(pending_.begin(), pending_.end(), id));
      task.queued = false;
    }
    if (task.holder != 0) {
      auto w = workers_.find(task.holder);
      if (w != workers_.end()) w->second.leased.erase(id);
    }
    inbox_.erase(id);
    result_cv_.SignalAll();
  }

  void Shutdown() override {
    absl::MutexLock lock(&mu_);
    if (shutdown_) return;
    shutdown_ = true;
    shutdown_at_ = absl::Now();
    task_cv_.SignalAll();
    result_cv_.SignalAll();
    reaper_cv_.SignalAll();
  }

  // ------------------------------------------------------------ GrpcTransport

  int port() const override { return port_; }
  std::string address() const override { return address_; }
  std::shared_ptr<grpc::Channel> InProcessChannel() override {
    return server_->InProcessChannel(WireChannelArguments());
  }
  GrpcTransportStats stats() const override {
    absl::MutexLock lock(&mu_);
    GrpcTransportStats s = stats_;
    s.workers_connected = workers_.size();
    return s;
  }

  // ------------------------------------------------------- called by handlers

  absl::Status Register(const wire::RegisterRequest& request, wire::RegisterResponse* response) {
    if (request.protocol_version() != kProtocolVersion) {
      return absl::FailedPreconditionError(absl::StrCat(
          "worker speaks protocol version ", request.protocol_version(), ", this server speaks ",
          kProtocolVersion, "; run the same fedsim build on both sides"));
    }
    absl::MutexLock lock(&mu_);
    uint64_t id = next_worker_id_++;
    WorkerState& worker = workers_[id];
    worker.name = request.worker_name();
    worker.slots = request.slots();
    worker.last_seen = absl::Now();
    ++stats_.workers_registered;
    result_cv_.SignalAll();  // Await's no-worker clock stops
    response->set_worker_id(id);
    response->set_run_id(options_.run_id);
    response->set_scenario_text(scenario_text_);
    response->set_num_params(num_params_);
    response->set_heartbeat_interval_s(options_.heartbeat_interval_s);
    return absl::OkStatus();
  }

  absl::Status GetTask(const wire::GetTaskRequest& request, wire::GetTaskResponse* response) {
    const uint64_t worker_id = request.worker_id();
    double wait_s = std::clamp(request.wait_s(), 0.0, options_.long_poll_max_wait_s);
    absl::Time deadline = absl::Now() + absl::Seconds(wait_s);
    absl::MutexLock lock(&mu_);
    while (true) {
      if (shutdown_) {
        auto w = workers_.find(worker_id);
        if (w != workers_.end()) w->second.told_finished = true;
        reaper_cv_.SignalAll();
        response->set_run_finished(true);
        return absl::OkStatus();
      }
      auto w = workers_.find(worker_id);
      if (w == workers_.end()) return UnknownWorker(worker_id);
      w->second.last_seen = absl::Now();
      if (!pending_.empty() || request.max_tasks() == 0 || absl::Now() >= deadline) {
        LeaseLocked(worker_id, &w->second, request.max_tasks(), response);
        return absl::OkStatus();
      }
      task_cv_.WaitWithDeadline(&mu_, deadline);
    }
  }

  absl::Status FetchModel(const wire::FetchModelRequest& request,
                          grpc::ServerWriter<wire::ModelChunk>* writer) {
    Touch(request.worker_id());
    ModelStore::Params params = store_->Get(request.version());
    if (params == nullptr) {
      return absl::NotFoundError(
          absl::StrCat("model version ", request.version(), " is not kept by the server"));
    }
    const size_t n = params->size();
    const size_t floats_per_chunk = std::max<size_t>(1, ChunkBytes() / sizeof(float));
    wire::ModelChunk chunk;
    chunk.set_version(request.version());
    chunk.set_num_params(n);
    size_t offset = 0;
    uint64_t sent = 0;
    do {
      size_t count = std::min(floats_per_chunk, n - offset);
      chunk.set_offset(offset);
      chunk.mutable_data()->assign(reinterpret_cast<const char*>(params->data() + offset),
                                   count * sizeof(float));
      if (!writer->Write(chunk)) break;  // the worker went away; nothing to undo
      sent += count * sizeof(float);
      offset += count;
    } while (offset < n);
    absl::MutexLock lock(&mu_);
    stats_.bytes_sent += sent;
    return absl::OkStatus();
  }

  absl::Status PushUpdate(grpc::ServerReader<wire::UpdateChunk>* reader,
                          wire::PushUpdateResponse* response) {
    DecodedUpdate update;
    absl::Status status = DecodeUpdate(reader, &update);
    if (status.ok()) status = CommitUpdate(std::move(update), response);
    if (!status.ok()) {
      absl::MutexLock lock(&mu_);
      ++stats_.rejected;
    }
    return status;
  }

  absl::Status Heartbeat(const wire::HeartbeatRequest& request,
                         wire::HeartbeatResponse* response) {
    absl::MutexLock lock(&mu_);
    auto w = workers_.find(request.worker_id());
    if (w == workers_.end()) {
      response->set_unknown_worker(true);
    } else {
      w->second.last_seen = absl::Now();
      if (shutdown_) {
        w->second.told_finished = true;
        reaper_cv_.SignalAll();
      }
    }
    response->set_run_finished(shutdown_);
    return absl::OkStatus();
  }

 private:
  size_t ChunkBytes() const { return std::clamp<size_t>(options_.chunk_bytes, 4, kMaxChunkBytes); }

  static absl::Status UnknownWorker(uint64_t worker_id) {
    return absl::FailedPreconditionError(absl::StrCat(
        "unknown worker ", worker_id, " (timed out or never registered); register again"));
  }

  void Touch(uint64_t worker_id) {
    absl::MutexLock lock(&mu_);
    auto w = workers_.find(worker_id);
    if (w != workers_.end()) w->second.last_seen = absl::Now();
  }

  void LeaseLocked(uint64_t worker_id, WorkerState* worker, uint32_t max_tasks,
                   wire::GetTaskResponse* response) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    while (response->tasks_size() < static_cast<int>(max_tasks) && !pending_.empty()) {
      TaskId id = pending_.front();
      pending_.pop_front();
      TaskState& task = tasks_.at(id);
      task.queued = false;
      task.holder = worker_id;
      if (std::find(task.lessees.begin(), task.lessees.end(), worker_id) == task.lessees.end()) {
        task.lessees.push_back(worker_id);
      }
      worker->leased.insert(id);
      TaskToWire(task.spec, response->add_tasks());
    }
  }

  // Reads the whole stream and checks everything that needs no shared state
  // beyond a first look at the task (to refuse early, before the bulk arrives).
  absl::Status DecodeUpdate(grpc::ServerReader<wire::UpdateChunk>* reader,
                            DecodedUpdate* update) {
    wire::UpdateChunk chunk;
    if (!reader->Read(&chunk)) {
      return absl::InvalidArgumentError("PushUpdate: empty stream (no header chunk)");
    }
    if (!chunk.has_header()) {
      return absl::FailedPreconditionError(
          "PushUpdate: the first chunk must carry the UpdateHeader");
    }
    const wire::UpdateHeader& header = chunk.header();
    update->worker = header.worker_id();
    TaskResult& result = update->result;
    result.id = header.task_id();
    result.client = header.client_id();
    result.base_version = header.base_version();
    result.num_examples = header.num_examples();
    result.metrics.insert(header.metrics().begin(), header.metrics().end());
    {
      absl::MutexLock lock(&mu_);
      auto w = workers_.find(update->worker);
      if (w != workers_.end()) w->second.last_seen = absl::Now();
      absl::Status early = CheckHeaderLocked(*update);
      if (!early.ok()) return early;
    }
    if (header.num_params() != num_params_) {
      return absl::InvalidArgumentError(
          absl::StrCat("update for task ", result.id, " has the wrong size: expected ",
                       num_params_, " floats, got ", header.num_params()));
    }
    // reserve + append: no zero-fill of memory that is overwritten anyway.
    result.delta.reserve(num_params_);
    uint64_t filled = 0;
    uint64_t bytes = 0;
    absl::Status status;
    do {
      const std::string& data = chunk.data();
      bytes += data.size();
      if (!status.ok()) continue;  // drain the stream, keep the first error
      if (chunk.offset() != filled) {
        status = absl::InvalidArgumentError(absl::StrCat(
            "update for task ", result.id, ": chunk offsets not contiguous: expected offset ",
            filled, ", got ", chunk.offset()));
      } else if (data.size() % sizeof(float) != 0) {
        status = absl::InvalidArgumentError(absl::StrCat(
            "update for task ", result.id, ": chunk of ", data.size(),
            " bytes is not a whole number of float32 values"));
      } else if (filled + data.size() / sizeof(float) > num_params_) {
        status = absl::InvalidArgumentError(absl::StrCat(
            "update for task ", result.id, " has the wrong size: expected ", num_params_,
            " floats, got at least ", filled + data.size() / sizeof(float)));
      } else {
        const float* first = reinterpret_cast<const float*>(data.data());
        result.delta.insert(result.delta.end(), first, first + data.size() / sizeof(float));
        filled += data.size() / sizeof(float);
      }
    } while (reader->Read(&chunk));
    {
      absl::MutexLock lock(&mu_);
      stats_.bytes_received += bytes;
    }
    if (!status.ok()) return status;
    if (filled != num_params_) {
      return absl::InvalidArgumentError(absl::StrCat("update for task ", result.id,
                                                     " has the wrong size: expected ",
                                                     num_params_, " floats, got ", filled));
    }
    const size_t bad = FirstNonFinite(result.delta);
    if (bad < result.delta.size()) {
      return absl::InvalidArgumentError(absl::StrCat("update for task ", result.id,
                                                     ": non-finite value ", result.delta[bad],
                                                     " at index ", bad));
    }
    update->fingerprint = UpdateFingerprint(result.client, result.base_version,
                                            result.num_examples, result.delta, result.metrics);
    return absl::OkStatus();
  }

  absl::Status CheckHeaderLocked(const DecodedUpdate& update) const
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    const TaskResult& result = update.result;
    auto it = tasks_.find(result.id);
    if (it == tasks_.end()) {
      return absl::NotFoundError(absl::StrCat("update for unknown task ", result.id));
    }
    const TaskState& task = it->second;
    if (std::find(task.lessees.begin(), task.lessees.end(), update.worker) ==
        task.lessees.end()) {
      return absl::FailedPreconditionError(absl::StrCat(
          "task ", result.id, " is not leased to worker ", update.worker,
          task.holder != 0 ? absl::StrCat(" (it is leased to worker ", task.holder, ")")
                           : std::string(" (it is not leased)")));
    }
    if (result.client != task.spec.client || result.base_version != task.spec.base_version) {
      return absl::InvalidArgumentError(absl::StrCat(
          "update for task ", result.id, " names client ", result.client, " and base version ",
          result.base_version, ", the task has client ", task.spec.client, " and base version ",
          task.spec.base_version));
    }
    return absl::OkStatus();
  }

  absl::Status CommitUpdate(DecodedUpdate update, wire::PushUpdateResponse* response) {
    absl::MutexLock lock(&mu_);
    // Re-check: the lease may have changed while the bulk was arriving.
    absl::Status status = CheckHeaderLocked(update);
    if (!status.ok()) return status;
    const TaskId id = update.result.id;
    TaskState& task = tasks_.at(id);
    if (task.received) {
      if (task.fingerprint != update.fingerprint) {
        return absl::AlreadyExistsError(absl::StrCat(
            "task ", id, " already has a result and this one differs from it"));
      }
      ++stats_.duplicates;
      response->set_duplicate(true);
      return absl::OkStatus();
    }
    if (task.cancelled) {
      ++stats_.discarded;
      task.received = true;
      task.fingerprint = update.fingerprint;
      return absl::OkStatus();
    }
    task.received = true;
    task.fingerprint = update.fingerprint;
    if (task.queued) {  // re-queued after a timeout, then the old worker made it
      pending_.erase(std::find(pending_.begin(), pending_.end(), id));
      task.queued = false;
    }
    if (task.holder != 0) {
      auto w = workers_.find(task.holder);
      if (w != workers_.end()) w->second.leased.erase(id);
    }
    ++stats_.updates_accepted;
    inbox_.emplace(id, std::move(update.result));
    arrival_order_.push_back(id);
    result_cv_.SignalAll();
    return absl::OkStatus();
  }

  // Waits for a change relevant to a result waiter, until `deadline`. Returns
  // Unavailable when no worker has been connected for no_worker_timeout_s.
  absl::Status WaitForResultLocked(absl::Time deadline) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (workers_.empty()) {
      absl::Time give_up = no_worker_since_ + absl::Seconds(options_.no_worker_timeout_s);
      if (absl::Now() >= give_up) {
        return absl::UnavailableError(absl::StrCat(
            "no worker is connected to the server at ", address_, " (none for ",
            options_.no_worker_timeout_s, " s); start one with: fedsim client --server=",
            address_));
      }
      deadline = std::min(deadline, give_up);
    }
    result_cv_.WaitWithDeadline(&mu_, deadline);
    return absl::OkStatus();
  }

  // Drops silent workers, and stops the server once Shutdown's grace is over.
  void ReaperLoop() {
    const absl::Duration tick = absl::Seconds(std::clamp(
        std::min(options_.heartbeat_interval_s, options_.heartbeat_timeout_s / 4), 0.005, 0.5));
    {
      absl::MutexLock lock(&mu_);
      while (true) {
      reaper_cv_.WaitWithTimeout(&mu_, tick);
      if (shutdown_) {
        bool all_told = std::all_of(workers_.begin(), workers_.end(),
                                    [](const auto& w) { return w.second.told_finished; });
        if (all_told || absl::Now() >= shutdown_at_ + absl::Seconds(options_.shutdown_grace_s)) {
          break;
        }
        continue;
      }
      DropSilentWorkersLocked();
      }
    }
    // Ends in-flight RPCs (long polls already returned run_finished).
    server_->Shutdown(std::chrono::system_clock::now() + std::chrono::milliseconds(200));
  }

  void DropSilentWorkersLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    const absl::Time now = absl::Now();
    const absl::Duration timeout = absl::Seconds(options_.heartbeat_timeout_s);
    std::vector<TaskId> requeue;
    int dropped = 0;
    for (auto it = workers_.begin(); it != workers_.end();) {
      if (now - it->second.last_seen <= timeout) {
        ++it;
        continue;
      }
      for (TaskId id : it->second.leased) {
        TaskState& task = tasks_.at(id);
        if (task.received || task.cancelled || task.holder != it->first) continue;
        task.holder = 0;
        requeue.push_back(id);
      }
      it = workers_.erase(it);
      ++stats_.workers_dropped;
      ++dropped;
    }
    if (dropped > 0) {
      if (workers_.empty()) no_worker_since_ = now;  // Await's no-worker clock starts
      result_cv_.SignalAll();
    }
    if (requeue.empty()) return;
    // Front of the queue, in their original submit order.
    std::sort(requeue.begin(), requeue.end(), [this](TaskId a, TaskId b) {
      return tasks_.at(a).seq < tasks_.at(b).seq;
    });
    for (auto it = requeue.rbegin(); it != requeue.rend(); ++it) {
      pending_.push_front(*it);
      tasks_.at(*it).queued = true;
    }
    stats_.tasks_requeued += requeue.size();
    task_cv_.SignalAll();
    result_cv_.SignalAll();
  }

  const GrpcServerOptions options_;
  const std::string scenario_text_;
  const uint64_t num_params_;
  ModelStore* const store_;
  AggregatorService service_;
  std::unique_ptr<grpc::Server> server_;
  int port_ = 0;
  std::string address_;
  std::thread reaper_;

  mutable absl::Mutex mu_;
  absl::CondVar task_cv_;    // pending_ grew, or shutdown
  absl::CondVar result_cv_;  // inbox grew, worker set changed, or shutdown
  absl::CondVar reaper_cv_;  // shutdown progress
  bool shutdown_ ABSL_GUARDED_BY(mu_) = false;
  absl::Time shutdown_at_ ABSL_GUARDED_BY(mu_);
  absl::Time no_worker_since_ ABSL_GUARDED_BY(mu_);
  uint64_t next_worker_id_ ABSL_GUARDED_BY(mu_) = 1;
  uint64_t next_seq_ ABSL_GUARDED_BY(mu_) = 0;
  std::unordered_map<uint64_t, WorkerState> workers_ ABSL_GUARDED_BY(mu_);
  std::unordered_map<TaskId, TaskState> tasks_ ABSL_GUARDED_BY(mu_);
  std::deque<TaskId> pending_ ABSL_GUARDED_BY(mu_);
  std::unordered_map<TaskId, TaskResult> inbox_ ABSL_GUARDED_BY(mu_);
  std::deque<TaskId> arrival_order_ ABSL_GUARDED_BY(mu_);
  GrpcTransportStats stats_ ABSL_GUARDED_BY(mu_);
};

grpc::Status AggregatorService::Register(ServerContext*, const wire::RegisterRequest* request,
                                         wire::RegisterResponse* response) {
  return ToGrpcStatus(t_->Register(*request, response));
}

grpc::Status AggregatorService::GetTask(ServerContext*, const wire::GetTaskRequest* request,
                                        wire::GetTaskResponse* response) {
  return ToGrpcStatus(t_->GetTask(*request, response));
}

grpc::Status AggregatorService::FetchModel(ServerContext*, const wire::FetchModelRequest* request,
                                           grpc::ServerWriter<wire::ModelChunk>* writer) {
  return ToGrpcStatus(t_->FetchModel(*request, writer));
}

grpc::Status AggregatorService::PushUpdate(ServerContext*,
                                           grpc::ServerReader<wire::UpdateChunk>* reader,
                                           wire::PushUpdateResponse* response) {
  return ToGrpcStatus(t_->PushUpdate(reader, response));
}

grpc::Status AggregatorService::Heartbeat(ServerContext*, const wire::HeartbeatRequest* request,
                                          wire::HeartbeatResponse* response) {
  return ToGrpcStatus(t_->Heartbeat(*request, response));
}

}  // namespace

absl::StatusOr<std::unique_ptr<GrpcTransport>> StartGrpcTransport(const GrpcServerOptions& options,
                                                                  std::string scenario_text,
                                                                  uint64_t num_params,
                                                                  ModelStore* store) {
  if (store == nullptr) return absl::InvalidArgumentError("StartGrpcTransport: store is null");
  if (!(options.heartbeat_interval_s > 0) ||
      !(options.heartbeat_timeout_s > options.heartbeat_interval_s)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "heartbeat timeout (", options.heartbeat_timeout_s,
        " s) must be larger than the heartbeat interval (", options.heartbeat_interval_s,
        " s), and both positive"));
  }
  if (options.chunk_bytes == 0 || options.chunk_bytes > kMaxChunkBytes) {
    return absl::InvalidArgumentError(absl::StrCat("chunk_bytes must be in 1..", kMaxChunkBytes,
                                                   ", got ", options.chunk_bytes));
  }
  if (options.listen_address.rfind(':') == std::string::npos) {
    return absl::InvalidArgumentError(
        absl::StrCat("listen address '", options.listen_address, "' is not HOST:PORT"));
  }
  auto transport = std::make_unique<GrpcTransportImpl>(options, std::move(scenario_text),
                                                       num_params, store);
  absl::Status status = transport->Start();
  if (!status.ok()) return status;
  return std::unique_ptr<GrpcTransport>(std::move(transport));
}

}  // namespace fedsim
