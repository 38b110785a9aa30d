#include "server/grpc_transport.h"

#include <algorithm>
#include <deque>
#include <thread>
#include <unordered_map>
#include <unordered_set>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/synchronization/mutex.h"
#include "proto/fedsim.grpc.pb.h"
#include "rpc/chunker.h"
#include "rpc/wire.h"
#include "server/admission.h"

namespace fedsim {
namespace {

// How often a waiting Await looks at GrpcServerOptions::interrupt.
constexpr absl::Duration kInterruptPoll = absl::Milliseconds(100);

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
        clock_(options.clock),
        timeout_(absl::Seconds(options.heartbeat_timeout_s)),
        scenario_text_(std::move(scenario_text)),
        num_params_(num_params),
        store_(store),
        service_(this),
        no_worker_since_(clock_->Now()) {}

  ~GrpcTransportImpl() override {
    Shutdown();
    if (reaper_.joinable()) reaper_.join();
    if (server_ != nullptr) {
      server_->Shutdown(GrpcTimeout(absl::Milliseconds(200)));
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
      if (clock_->Now() >= deadline) return std::optional<TaskResult>();
      absl::Status idle = WaitForResultLocked(deadline);
      if (!idle.ok()) return idle;
    }
  }

  void Cancel(TaskId id) override {
    absl::MutexLock lock(&mu_);
    auto it = tasks_.find(id);
    if (it == tasks_.end()) return;
    it->second.cancelled = true;
    WithdrawLocked(id, &it->second);
    inbox_.erase(id);
    ++result_events_;
  }

  void Shutdown() override {
    absl::MutexLock lock(&mu_);
    if (shutdown_) return;
    shutdown_ = true;
    shutdown_at_ = clock_->Now();
    ++result_events_;
    ++reaper_events_;
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
      return Refuse(absl::FailedPreconditionError(absl::StrCat(
          "worker ", request.worker_name(), " speaks protocol version ",
          request.protocol_version(), ", this server speaks ", kProtocolVersion,
          "; run the same fedsim build on both sides")));
    }
    std::string warning;
    absl::Status identity = CheckWorkerIdentity(
        request,
        RunIdentity{options_.build_id, options_.numeric_mode, options_.numeric_fingerprint,
                    options_.accept_mismatched_workers},
        &warning);
    if (!identity.ok()) return Refuse(identity);
    if (!warning.empty()) Log(absl::StrCat("warning: ", warning));
    absl::MutexLock lock(&mu_);
    uint64_t id = next_worker_id_++;
    WorkerState& worker = workers_[id];
    worker.name = request.worker_name();
    worker.slots = request.slots();
    worker.last_seen = clock_->Now();
    DropSilentWorkersLocked();
    ++stats_.workers_registered;
    ++result_events_;  // Await's no-worker clock stops
    ++reaper_events_;  // a new expiry to watch
    response->set_worker_id(id);
    response->set_run_id(options_.run_id);
    response->set_scenario_text(scenario_text_);
    response->set_num_params(num_params_);
    response->set_heartbeat_interval_s(options_.heartbeat_interval_s);
    return absl::OkStatus();
  }

  absl::Status GetTask(const wire::GetTaskRequest& request, wire::GetTaskResponse* response) {
    const uint64_t worker_id = request.worker_id();
    const double wait_s = std::clamp(request.wait_s(), 0.0, options_.long_poll_max_wait_s);
    const absl::Time deadline = clock_->Now() + absl::Seconds(wait_s);
    absl::MutexLock lock(&mu_);
    // Wakes for a task to lease, the end of the run, or this worker's drop.
    auto wake = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
      return !pending_.empty() || shutdown_ || workers_.find(worker_id) == workers_.end();
    };
    while (true) {
      if (shutdown_) {
        auto w = workers_.find(worker_id);
        if (w != workers_.end()) w->second.told_finished = true;
        ++reaper_events_;
        response->set_run_finished(true);
        return absl::OkStatus();
      }
      if (!SeenLocked(worker_id)) return UnknownWorker(worker_id);
      if (!pending_.empty() || request.max_tasks() == 0 || clock_->Now() >= deadline) {
        LeaseLocked(worker_id, &workers_.at(worker_id), request.max_tasks(), response);
        return absl::OkStatus();
      }
      clock_->AwaitWithDeadline(&mu_, absl::Condition(&wake), deadline);
    }
  }

  absl::Status FetchModel(const wire::FetchModelRequest& request,
                          grpc::ServerWriter<wire::ModelChunk>* writer) {
    {
      absl::MutexLock lock(&mu_);
      SeenLocked(request.worker_id());
    }
    absl::StatusOr<ModelRef> ref = ModelRefFromWire(request.model());
    if (!ref.ok()) return ref.status();
    ModelStore::Params params = store_->Get(*ref);
    if (params == nullptr) {
      return absl::NotFoundError(
          absl::StrCat("model ", ref->ToString(), " is not kept by the server"));
    }
    wire::ModelChunk chunk;
    *chunk.mutable_model() = request.model();
    chunk.set_num_params(params->size());
    const uint64_t sent =
        SplitIntoChunks(*params, options_.chunk_bytes, [&](uint64_t offset, std::string_view d) {
          chunk.set_offset(offset);
          chunk.mutable_data()->assign(d.data(), d.size());
          return writer->Write(chunk);  // false: the worker went away; nothing to undo
        });
    absl::MutexLock lock(&mu_);
    stats_.bytes_sent += sent;
    return absl::OkStatus();
  }

  absl::Status PushUpdate(grpc::ServerReader<wire::UpdateChunk>* reader,
                          wire::PushUpdateResponse* response) {
    DecodedUpdate update;
    uint64_t bytes = 0;
    // A first look at the task refuses early, before the bulk arrives.
    auto check_header = [this](const DecodedUpdate& u) {
      absl::MutexLock lock(&mu_);
      SeenLocked(u.worker);
      return CheckHeaderLocked(u);
    };
    absl::Status status = ReadUpdate(reader, num_params_, check_header, &update, &bytes);
    if (status.ok()) status = CommitUpdate(std::move(update), response);
    absl::MutexLock lock(&mu_);
    stats_.bytes_received += bytes;
    if (!status.ok()) ++stats_.rejected;
    return status;
  }

  absl::Status Heartbeat(const wire::HeartbeatRequest& request,
                         wire::HeartbeatResponse* response) {
    absl::MutexLock lock(&mu_);
    if (!SeenLocked(request.worker_id())) {
      response->set_unknown_worker(true);
    } else if (shutdown_) {
      workers_.at(request.worker_id()).told_finished = true;
      ++reaper_events_;
    }
    response->set_run_finished(shutdown_);
    return absl::OkStatus();
  }

 private:
  static absl::Status UnknownWorker(uint64_t worker_id) {
    return absl::FailedPreconditionError(absl::StrCat(
        "unknown worker ", worker_id, " (timed out or never registered); register again"));
  }

  void Log(const std::string& line) const {
    if (options_.log == nullptr) return;
    std::fprintf(options_.log, "fedsim server: %s\n", line.c_str());
    std::fflush(options_.log);
  }

  absl::Status Refuse(absl::Status status) {
    Log(absl::StrCat("refused a worker: ", status.message()));
    return status;
  }

  // The worker just made contact: counts it as seen now, then drops every
  // worker that has been silent for too long (so a live caller never is).
  // Returns whether the worker is known.
  bool SeenLocked(uint64_t worker_id) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    auto w = workers_.find(worker_id);
    if (w != workers_.end()) w->second.last_seen = clock_->Now();
    DropSilentWorkersLocked();
    return w != workers_.end();
  }

  // Takes the task out of the pending queue and its holder's leases.
  void WithdrawLocked(TaskId id, TaskState* task) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (task->queued) {
      pending_.erase(std::find(pending_.begin(), pending_.end(), id));
      task->queued = false;
    }
    auto w = workers_.find(task->holder);
    if (w != workers_.end()) w->second.leased.erase(id);
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
    if (result.client != task.spec.client || result.base != task.spec.base) {
      return absl::InvalidArgumentError(absl::StrCat(
          "update for task ", result.id, " names client ", result.client, " and base model ",
          result.base.ToString(), ", the task has client ", task.spec.client,
          " and base model ", task.spec.base.ToString()));
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
    task.received = true;
    task.fingerprint = update.fingerprint;
    if (task.cancelled) {
      ++stats_.discarded;
      return absl::OkStatus();
    }
    // It may have been re-queued after a timeout, then the old worker made it.
    WithdrawLocked(id, &task);
    ++stats_.updates_accepted;
    inbox_.emplace(id, std::move(update.result));
    arrival_order_.push_back(id);
    ++result_events_;
    return absl::OkStatus();
  }

  // Waits for a change relevant to a result waiter, until `deadline`. Returns
  // Unavailable when no worker has been connected for no_worker_timeout_s.
  absl::Status WaitForResultLocked(absl::Time deadline) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (options_.interrupt != nullptr) {
      if (options_.interrupt->load()) return absl::CancelledError("interrupted");
      deadline = std::min(deadline, clock_->Now() + kInterruptPoll);
    }
    if (workers_.empty()) {
      absl::Time give_up = no_worker_since_ + absl::Seconds(options_.no_worker_timeout_s);
      if (clock_->Now() >= give_up) {
        return absl::UnavailableError(absl::StrCat(
            "no worker is connected to the server at ", address_, " (none for ",
            options_.no_worker_timeout_s, " s); start one with: fedsim client --server=",
            address_));
      }
      deadline = std::min(deadline, give_up);
    }
    const uint64_t seen = result_events_;
    auto changed = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return result_events_ != seen; };
    clock_->AwaitWithDeadline(&mu_, absl::Condition(&changed), deadline);
    return absl::OkStatus();
  }

  // Drops workers when they expire, and stops the server once Shutdown's
  // grace is over. Sleeps until the next expiry (or a state change), so it
  // costs nothing between heartbeats and acts exactly on time.
  void ReaperLoop() {
    {
      absl::MutexLock lock(&mu_);
      while (true) {
        DropSilentWorkersLocked();
        absl::Time deadline = absl::InfiniteFuture();
        if (shutdown_) {
          const bool all_told = std::all_of(workers_.begin(), workers_.end(),
                                            [](const auto& w) { return w.second.told_finished; });
          deadline = shutdown_at_ + absl::Seconds(options_.shutdown_grace_s);
          if (all_told || clock_->Now() >= deadline) break;
        } else {
          for (const auto& [id, w] : workers_) deadline = std::min(deadline, w.last_seen + timeout_);
        }
        const uint64_t seen = reaper_events_;
        auto changed = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return reaper_events_ != seen; };
        clock_->AwaitWithDeadline(&mu_, absl::Condition(&changed), deadline);
      }
    }
    // Ends in-flight RPCs (long polls already returned run_finished).
    server_->Shutdown(GrpcTimeout(absl::Milliseconds(200)));
  }

  void DropSilentWorkersLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (shutdown_) return;  // the run is over: nothing left to re-run
    const absl::Time now = clock_->Now();
    std::vector<TaskId> requeue;
    int dropped = 0;
    for (auto it = workers_.begin(); it != workers_.end();) {
      if (now - it->second.last_seen < timeout_) {
        ++it;
        continue;
      }
      std::vector<TaskId> given_back;
      for (TaskId id : it->second.leased) {
        TaskState& task = tasks_.at(id);
        if (task.received || task.cancelled || task.holder != it->first) continue;
        task.holder = 0;
        given_back.push_back(id);
      }
      std::sort(given_back.begin(), given_back.end());
      Log(absl::StrCat("worker ", it->first, " (", it->second.name, ") silent for ",
                       absl::FormatDuration(now - it->second.last_seen), ": dropped; ",
                       given_back.empty() ? std::string("it held no task")
                                          : absl::StrCat("requeued ", given_back.size(),
                                                         " task(s): ",
                                                         absl::StrJoin(given_back, ", "))));
      requeue.insert(requeue.end(), given_back.begin(), given_back.end());
      it = workers_.erase(it);
      ++stats_.workers_dropped;
      ++dropped;
    }
    if (dropped == 0) return;
    if (workers_.empty()) no_worker_since_ = now;  // Await's no-worker clock starts
    ++result_events_;
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
  }

  const GrpcServerOptions options_;
  Clock* const clock_;
  const absl::Duration timeout_;  // heartbeat timeout
  const std::string scenario_text_;
  const uint64_t num_params_;
  ModelStore* const store_;
  AggregatorService service_;
  std::unique_ptr<grpc::Server> server_;
  int port_ = 0;
  std::string address_;
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
  if (options.clock == nullptr) return absl::InvalidArgumentError("StartGrpcTransport: no clock");
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
