#include "client/worker.h"

#include <unistd.h>

#include <algorithm>
#include <memory>
#include <set>
#include <thread>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "client/folder_run_data.h"
#include "client/lease_depth.h"
#include "client/model_cache.h"
#include "client/peer_node.h"
#include "config/scenario_file.h"
#include "data/client_folder.h"
#include "proto/scenario.pb.h"
#include "rpc/aggregator_client.h"
#include "rpc/credentials.h"
#include "rpc/wire.h"
#include "runtime/gpu_batcher.h"
#include "runtime/run_setup.h"
#include "runtime/task_runner.h"
#include "util/thread_pool.h"

namespace fedsim {
namespace {

// Pause between retries of a call that failed transiently.
constexpr absl::Duration kRetryPause = absl::Milliseconds(200);
// Backoff while the server is silent (restarting, say): each retry waits half
// the silence so far, between kRetryPause and this.
constexpr absl::Duration kMaxRetryPause = absl::Seconds(2);

// Errors a retry may fix. CANCELLED is here because the worker never cancels
// its own calls: it comes from a server that is stopping (its in-flight calls
// are cancelled), and the next call then tells run_finished or Unavailable.
bool IsTransient(const absl::Status& s) {
  return absl::IsUnavailable(s) || absl::IsDeadlineExceeded(s) || absl::IsCancelled(s);
}

std::string DefaultName() {
  char host[256] = {0};
  if (gethostname(host, sizeof(host) - 1) != 0) host[0] = '\0';
  return absl::StrCat(host[0] != '\0' ? host : "localhost", ":", getpid());
}

class Worker {
 public:
  Worker(const WorkerOptions& options, std::shared_ptr<grpc::Channel> channel)
      : options_(options),
        clock_(options.clock),
        client_(std::move(channel)),
        cache_(static_cast<size_t>(std::max(options.model_cache_versions, 1)),
               [this](const ModelRef& ref) { return Fetch(ref); }) {
    client_.set_token(options_.security.token);
    identity_.name = options_.name.empty() ? DefaultName() : options_.name;
    identity_.slots = static_cast<uint32_t>(options_.slots);
    identity_.backend = options_.device.DisplayName();
    for (const std::string& dir : options_.data_dirs) {
      identity_.local_clients.push_back(ClientNameOfFolder(dir));
    }
    identity_.numeric_fingerprints = options_.numeric_fingerprints.empty()
                                         ? OwnNumericFingerprints()
                                         : options_.numeric_fingerprints;
  }

  absl::Status Run(WorkerSummary* summary) {
    absl::Status status = RunInternal();
    if (summary != nullptr) {
      absl::MutexLock lock(&mu_);
      summary->worker_id = session_.worker_id;
      summary->tasks_done = tasks_done_;
      summary->duplicates = duplicates_;
      summary->tasks_dropped = tasks_dropped_;
      summary->models_fetched = cache_.downloads();
      summary->bytes_fetched = client_.bytes_fetched();
      summary->bytes_pushed = client_.bytes_pushed();
      summary->bytes_shared = client_.bytes_shared();
      summary->bytes_from_peers = peer_ != nullptr ? peer_->bytes_fetched() : 0;
      summary->bytes_to_peers = peer_ != nullptr ? peer_->bytes_put() : 0;
    }
    return status;
  }

 private:
  absl::Status RunInternal() {
    // What each folder holds, reported at registration (a run that admits
    // clients by name takes n_i from it); a folder that cannot be read
    // stops the worker before it contacts the server.
    for (const std::string& dir : options_.data_dirs) {
      absl::StatusOr<ClientFolderCounts> counts = CountClientFolder(dir);
      if (!counts.ok()) return counts.status();
      identity_.local_train_examples.push_back(counts->train);
      identity_.local_test_examples.push_back(counts->test);
    }
    if (!options_.peer_listen.empty()) {
      PeerNodeOptions po;
      po.listen = options_.peer_listen;
      po.advertise_host = options_.peer_host;
      po.token = options_.security.token;
      po.log = options_.log;
      absl::StatusOr<std::unique_ptr<PeerNode>> peer =
          StartPeerNode(po, [this](const ModelRef& ref) { return cache_.Get(ref); });
      if (!peer.ok()) return peer.status();
      peer_ = *std::move(peer);
      identity_.peer_address = peer_->address();
    }
    // Register, retrying while the server is still coming up.
    const absl::Time give_up = clock_->Now() + absl::Seconds(options_.connect_timeout_s);
    absl::StatusOr<wire::RegisterResponse> reg;
    while (true) {
      reg = client_.Register(identity_);
      if (reg.ok() || !IsTransient(reg.status()) || clock_->Now() >= give_up) break;
      clock_->SleepFor(kRetryPause);
    }
    if (!reg.ok()) {
      if (IsTransient(reg.status())) {
        return absl::UnavailableError(absl::StrCat(
            "cannot reach the fedsim server at ", options_.server, " within ",
            options_.connect_timeout_s,
            " s (is `fedsim server` running and listening there?): ", reg.status().message()));
      }
      return absl::Status(
          reg.status().code(),
          absl::StrCat("server at ", options_.server,
                       " refused to register this worker: ", reg.status().message(),
                       absl::IsUnauthenticated(reg.status())
                           ? " (give the worker the server's run token with --token_file or "
                             "$FEDSIM_TOKEN)"
                           : ""));
    }
    {
      absl::MutexLock lock(&mu_);
      session_ = WorkerSession::Of(*reg);
      scenario_text_ = reg->scenario_text();
      last_contact_ = clock_->Now();
    }
    heartbeat_interval_ = absl::Seconds(std::clamp(reg->heartbeat_interval_s(), 0.01, 60.0));
    // Heartbeats start now: loading the data can take longer than the
    // server's heartbeat timeout.
    std::thread heartbeat([this] { HeartbeatLoop(); });
    absl::Status status = Work(*reg);
    {
      absl::MutexLock lock(&mu_);
      stop_ = true;
    }
    heartbeat.join();
    // Tasks finish their training (it cannot be interrupted) and then skip
    // the push.
    pool_.reset();
    pushers_.reset();  // after the pool: its tasks hand pushes on
    absl::MutexLock lock(&mu_);
    return fatal_.ok() ? status : fatal_;
  }

  // Builds the run's data from the scenario the server sent, then trains
  // tasks until the run ends.
  absl::Status Work(const wire::RegisterResponse& reg) {
    absl::StatusOr<config::Scenario> scenario = ParseScenarioText(
        reg.scenario_text(), absl::StrCat("<scenario from ", options_.server, ">"), {});
    if (!scenario.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat("the scenario sent by ", options_.server,
                       " does not parse in this build: ", scenario.status().message()));
    }
    if (scenario->clock().mode() == config::Clock::WALL) {
      time_scale_ = scenario->clock().time_scale();
    }
    absl::StatusOr<RunData> data =
        options_.data_dirs.empty()
            ? BuildRunData(*scenario, options_.scenario_dir)
            : FolderRunData(*scenario, reg, options_.data_dirs, options_.server, options_.log);
    if (!data.ok()) return data.status();
    data_ = std::make_unique<RunData>(std::move(data).value());
    if (options_.slots == 0) {
      const int slots = AutoGpuSlots(*data_, scenario->local().batch_size(), options_.device);
      absl::MutexLock lock(&mu_);
      slots_ = slots;
      free_slots_ = slots;
    }
    runner_ = std::make_unique<TaskRunner>(data_.get(),
                                           ClientCacheBytes(scenario->limits().memory_budget_mb()),
                                           TaskDevice{options_.device, slots_});
    if (options_.log != nullptr) {
      std::fprintf(options_.log,
                   "fedsim client: connected to %s as worker %llu (%d slots on %s, scenario "
                   "'%s', %llu params)\n",
                   options_.server.c_str(), static_cast<unsigned long long>(reg.worker_id()),
                   slots_, options_.device.ToString().c_str(), scenario->name().c_str(),
                   static_cast<unsigned long long>(reg.num_params()));
      std::fflush(options_.log);
    }

    UseSharedMemory(reg);
    pool_ = std::make_unique<ThreadPool>(slots_);
    pushers_ = std::make_unique<ThreadPool>(slots_);
    {
      absl::MutexLock lock(&mu_);
      free_slots_ = lease_depth_.depth() * slots_;
    }
    PollLoop();
    return absl::OkStatus();
  }

  // ------------------------------------------------------------------ poller

  void PollLoop() {
    while (true) {
      uint32_t free = 0;
      WorkerSession id;
      {
        absl::MutexLock lock(&mu_);
        auto ready = [this]()
                         ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return stop_ || free_slots_ > 0; };
        mu_.Await(absl::Condition(&ready));
        if (stop_) return;
        free = static_cast<uint32_t>(free_slots_);
        id = session_;
      }
      absl::StatusOr<wire::GetTaskResponse> response =
          client_.GetTask(id, free, options_.long_poll_s);
      if (!response.ok()) {
        if (absl::IsFailedPrecondition(response.status())) {
          Reregister(id.worker_id);  // we timed out on the server; join again
        } else if (!HandleTransient(response.status(), "GetTask")) {
          return;
        }
        continue;
      }
      MarkContact();
      if (response->run_finished()) {
        absl::MutexLock lock(&mu_);
        stop_ = true;  // before any other thread sees the server go away
        return;
      }
      for (const wire::Task& task : response->tasks()) {
        absl::MutexLock lock(&mu_);
        if (!StartTaskLocked(task, id)) return;
        --free_slots_;
      }
    }
  }

  // Hands a leased task to the pool (its slot already counted as taken).
  // False, with the fatal status set, when the task does not decode.
  bool StartTaskLocked(const wire::Task& task, const WorkerSession& id)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    absl::StatusOr<TaskSpec> spec = TaskFromWire(task);
    if (!spec.ok()) {
      SetFatalLocked(spec.status());
      return false;
    }
    in_flight_.insert(spec->id);
    pool_->Schedule([this, spec = *std::move(spec), id, backup = task.peer_backup()] {
      RunTask(spec, id, backup);
    });
    return true;
  }

  // --------------------------------------------------------------- heartbeat

  void HeartbeatLoop() {
    absl::MutexLock lock(&mu_);
    while (!stop_) {
      clock_->AwaitWithTimeout(&mu_, absl::Condition(&stop_), heartbeat_interval_);
      if (stop_) return;
      WorkerSession id = session_;
      std::vector<TaskId> in_flight(in_flight_.begin(), in_flight_.end());
      mu_.Unlock();
      absl::StatusOr<wire::HeartbeatResponse> response = client_.Heartbeat(id, in_flight);
      bool finished = false;
      if (response.ok()) {
        MarkContact();
        if (response->unknown_worker()) Reregister(id.worker_id);
        finished = response->run_finished();
      } else {
        HandleTransient(response.status(), "Heartbeat");
      }
      mu_.Lock();
      if (finished) stop_ = true;
    }
  }

  // ------------------------------------------------------------------- tasks

  // On a training thread; the push goes to a push thread, so the slot trains
  // its next task (client/lease_depth.h) meanwhile. See wire::Task.peer_backup.
  void RunTask(const TaskSpec& spec, const WorkerSession& lease_worker,
               const std::string& peer_backup) {
    std::shared_ptr<const TaskResult> result;
    absl::Status status = absl::OkStatus();
    if (!Stopped()) {  // a task still queued when the run ends is not trained
      TaskLog(spec, "training");
      const absl::Time start = clock_->Now();
      status = Train(spec, lease_worker, peer_backup, &result);
      absl::MutexLock lock(&mu_);
      free_slots_ += lease_depth_.NoteTrain(clock_->Now() - start) * slots_;
    }
    if (result == nullptr) {
      FinishTask(spec, lease_worker, status, false, false, {});
      return;
    }
    pushers_->Schedule([this, spec, lease_worker, result = std::move(result)] {
      bool done = false;
      bool duplicate = false;
      std::vector<wire::Task> next;  // leased with the push's answer
      const absl::Time start = clock_->Now();
      absl::Status pushed = Push(spec, lease_worker, result, &done, &duplicate, &next);
      {
        absl::MutexLock lock(&mu_);
        free_slots_ += lease_depth_.NotePush(clock_->Now() - start) * slots_;
      }
      FinishTask(spec, lease_worker, pushed, done, duplicate, std::move(next));
    });
  }

  void FinishTask(const TaskSpec& spec, const WorkerSession& lease_worker,
                  const absl::Status& status, bool done, bool duplicate,
                  std::vector<wire::Task> next) {
    TaskLog(spec, done ? (duplicate ? "pushed (a duplicate)" : "pushed")
                       : (status.ok() ? "dropped" : "failed"));
    absl::MutexLock lock(&mu_);
    if (!status.ok()) SetFatalLocked(status);
    if (done) {
      ++tasks_done_;
      duplicates_ += duplicate;
    } else {
      ++tasks_dropped_;
    }
    in_flight_.erase(spec.id);
    // The lease goes on with the task the push brought (at most one), or
    // frees up for the poller. Once stopping, a brought task is dropped: its
    // lease runs out on the server like any other unfinished one.
    if (!next.empty() && !stop_ && StartTaskLocked(next.front(), lease_worker)) return;
    ++free_slots_;
  }

  // Trains the task; *out stays null when the task is dropped. Errors
  // returned here end the worker; outcomes a retry cannot change but that
  // are not wrong (the task was cancelled or went to another worker) only
  // drop the task.
  absl::Status Train(const TaskSpec& spec, const WorkerSession& lease_worker,
                     const std::string& peer_backup, std::shared_ptr<const TaskResult>* out) {
    absl::StatusOr<ModelCache::Params> base;
    // A client model this worker holds (peer-to-peer decentralized runs):
    // trained from here, and y = x + delta stays here.
    PeerNode::Params held;
    if (peer_ != nullptr && !spec.base.is_global()) {
      held = peer_->Held(spec.base.client, spec.base.version);
    }
    if (held != nullptr) base = held;
    while (held == nullptr) {
      base = cache_.Get(spec.base);
      if (base.ok() || !IsTransient(base.status())) break;
      if (!HandleTransient(base.status(), "FetchModel")) return absl::OkStatus();
    }
    if (!base.ok()) {
      if (absl::IsNotFound(base.status())) {  // released: the engine no longer needs it
        Warn(absl::StrCat("task ", spec.id, " dropped: ", base.status().message()));
        return absl::OkStatus();
      }
      if (absl::IsFailedPrecondition(base.status())) {  // the server forgot this session
        Warn(absl::StrCat("task ", spec.id, " dropped: ", base.status().message()));
        Reregister(lease_worker.worker_id);
        return absl::OkStatus();
      }
      return base.status();
    }
    absl::StatusOr<TaskResult> result = runner_->Run(spec, **base);
    base = ModelCache::Params();  // let the cache alone decide what stays in memory
    if (!result.ok()) return result.status();
    if (held != nullptr && spec.kind == TaskKind::kTrain) {
      // y = x + delta in float, as the in-process rule computes it.
      std::vector<float>& delta = result->delta;
      for (size_t j = 0; j < delta.size() && j < held->size(); ++j) delta[j] += (*held)[j];
      auto y = std::make_shared<const std::vector<float>>(std::move(delta));
      peer_->KeepTrained(spec.client, spec.base.version, y);
      result->delta.clear();  // the server gets the figures only
      // A copy on the backup's worker, before the server counts y as there:
      // it outlives this worker. Without it y is lost with this worker, and
      // the round mixes without it (server/peer_models.h).
      if (!peer_backup.empty()) {
        absl::Status copied = peer_->Replicate(peer_backup, spec.client, spec.base.version, *y);
        if (!copied.ok()) {
          Warn(absl::StrCat("task ", spec.id, ": no copy of client ", spec.client,
                            "'s trained model on its backup worker: ", copied.message()));
        }
      }
    }

    if (time_scale_ > 0 && spec.duration_s > 0) {
      const absl::Time wake = clock_->Now() + absl::Seconds(spec.duration_s * time_scale_);
      absl::MutexLock lock(&mu_);
      clock_->AwaitWithDeadline(&mu_, absl::Condition(&stop_), wake);
    }
    // Shared with gRPC: a streamed push sends the delta without copying it.
    *out = std::make_shared<const TaskResult>(*std::move(result));
    return absl::OkStatus();
  }

  // Pushes a trained result; errors as Train's.
  absl::Status Push(const TaskSpec& spec, const WorkerSession& lease_worker,
                    const std::shared_ptr<const TaskResult>& shared, bool* done, bool* duplicate,
                    std::vector<wire::Task>* next) {
    while (true) {
      if (Stopped()) return absl::OkStatus();
      // Asks for the slot's next task with the answer: no GetTask round trip.
      absl::StatusOr<AggregatorClient::Pushed> pushed =
          client_.PushUpdateAndLease(lease_worker, shared, 1);
      if (pushed.ok()) {
        MarkContact();
        *done = true;
        *duplicate = pushed->duplicate;
        *next = std::move(pushed->tasks);
        return absl::OkStatus();
      }
      const absl::Status& s = pushed.status();
      if (IsTransient(s)) {
        if (!HandleTransient(s, "PushUpdate")) return absl::OkStatus();
        continue;
      }
      if (absl::IsFailedPrecondition(s) || absl::IsNotFound(s)) {
        Warn(absl::StrCat("result of task ", spec.id, " not taken: ", s.message()));
        return absl::OkStatus();
      }
      // InvalidArgument / AlreadyExists: this build computed something the
      // server cannot accept; a silent skip would hide a real bug.
      return absl::Status(
          s.code(), absl::StrCat("server refused the result of task ", spec.id, ": ", s.message()));
    }
  }

  absl::StatusOr<std::vector<float>> Fetch(const ModelRef& ref) {
    WorkerSession id;
    {
      absl::MutexLock lock(&mu_);
      id = session_;
    }
    absl::StatusOr<std::vector<float>> params = client_.FetchModel(id, ref);
    if (params.ok()) MarkContact();
    return params;
  }

  // ----------------------------------------------------------------- helpers

  // For a transient error: pauses (backing off, see kMaxRetryPause) and
  // returns true while the server has been silent for at most
  // server_lost_timeout_s; otherwise records the fatal Unavailable and
  // returns false. Other errors are fatal at once.
  bool HandleTransient(const absl::Status& s, const char* what) {
    absl::MutexLock lock(&mu_);
    if (stop_) return false;
    if (!IsTransient(s)) {
      SetFatalLocked(absl::Status(
          s.code(), absl::StrCat(what, " to ", options_.server, " failed: ", s.message())));
      return false;
    }
    absl::Duration silent = clock_->Now() - last_contact_;
    if (silent > absl::Seconds(options_.server_lost_timeout_s)) {
      SetFatalLocked(absl::UnavailableError(absl::StrCat(
          "lost the fedsim server at ", options_.server, ": no answer for ",
          absl::FormatDuration(silent), " (last error from ", what, ": ", s.message(), ")")));
      return false;
    }
    const absl::Duration pause = std::clamp(silent / 2, kRetryPause, kMaxRetryPause);
    clock_->AwaitWithTimeout(&mu_, absl::Condition(&stop_), pause);
    return !stop_;
  }

  void Reregister(uint64_t stale_id) {
    absl::MutexLock reg_lock(&register_mu_);
    {
      absl::MutexLock lock(&mu_);
      if (session_.worker_id != stale_id || stop_) return;  // someone did already
    }
    absl::StatusOr<wire::RegisterResponse> reg = client_.Register(identity_);
    absl::MutexLock lock(&mu_);
    if (reg.ok() && reg->scenario_text() != scenario_text_) {
      // A server restarted on another run: this worker's data is not its.
      SetFatalLocked(absl::FailedPreconditionError(absl::StrCat(
          "the server at ", options_.server,
          " now runs another scenario than the one this worker loaded; start a new worker "
          "for it")));
    } else if (reg.ok()) {
      Warn(absl::StrCat("the server had dropped worker ", stale_id, "; registered again as ",
                        reg->worker_id()));
      session_ = WorkerSession::Of(*reg);
      last_contact_ = clock_->Now();
      if (data_ != nullptr) UseSharedMemory(*reg);  // a new segment for the new session
    } else if (!IsTransient(reg.status())) {
      SetFatalLocked(reg.status());
    }
  }

  // Pushes go through a shared-memory segment when the server offered it
  // (this worker runs on its machine) and one can be made; else they stream.
  void UseSharedMemory(const wire::RegisterResponse& reg) {
    if (!reg.shared_memory_updates()) {
      client_.set_update_segment(nullptr);
      return;
    }
    client_.UseSharedMemory(
        reg.num_params(), static_cast<uint32_t>(std::max(slots_, 1)),
        [this](const absl::Status& why) {
          Warn(absl::StrCat("updates go over the socket, not shared memory: ", why.message()));
        });
  }

  void MarkContact() {
    absl::MutexLock lock(&mu_);
    last_contact_ = clock_->Now();
  }

  bool Stopped() {
    absl::MutexLock lock(&mu_);
    return stop_;
  }

  void SetFatalLocked(absl::Status status) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (fatal_.ok()) fatal_ = std::move(status);
    stop_ = true;
  }

  void Warn(const std::string& message) {
    if (options_.log == nullptr) return;
    std::fprintf(options_.log, "fedsim client: %s\n", message.c_str());
    std::fflush(options_.log);
  }

  void TaskLog(const TaskSpec& spec, const char* what) {
    if (options_.task_log == nullptr) return;
    std::fprintf(options_.task_log, "fedsim client: task %llu (client %u, from %s): %s\n",
                 static_cast<unsigned long long>(spec.id), spec.client,
                 spec.base.ToString().c_str(), what);
    std::fflush(options_.task_log);
  }

  const WorkerOptions options_;
  Clock* const clock_;
  WorkerIdentity identity_;
  AggregatorClient client_;
  ModelCache cache_;
  std::unique_ptr<RunData> data_;
  std::unique_ptr<TaskRunner> runner_;
  std::unique_ptr<ThreadPool> pool_;     // trains the leased tasks; `slots` threads
  std::unique_ptr<ThreadPool> pushers_;  // pushes their results; `slots` threads
  std::unique_ptr<PeerNode> peer_;       // peer-to-peer runs' client models
  double time_scale_ = 0;
  absl::Duration heartbeat_interval_ = absl::Milliseconds(500);

  // Every wait is a condition on the state below (absl re-checks conditions
  // whenever mu_ is released), so there is no condition variable to signal.
  absl::Mutex register_mu_ ABSL_ACQUIRED_BEFORE(mu_);
  absl::Mutex mu_;
  bool stop_ ABSL_GUARDED_BY(mu_) = false;
  absl::Status fatal_ ABSL_GUARDED_BY(mu_);
  WorkerSession session_ ABSL_GUARDED_BY(mu_);  // id and session from the last Register
  // The scenario of the first registration; a re-registration must match.
  std::string scenario_text_ ABSL_GUARDED_BY(mu_);
  absl::Time last_contact_ ABSL_GUARDED_BY(mu_);
  // The pool's size: options_.slots, or on a GPU with slots 0 the batch
  // size chosen at registration (AutoGpuSlots).
  int slots_ = options_.slots;
  // Leases this worker may still take: lease_depth_.depth() per slot, less those it
  // holds (queued, training or pushing).
  int free_slots_ ABSL_GUARDED_BY(mu_) = 0;
  LeaseDepth lease_depth_ ABSL_GUARDED_BY(mu_);
  std::set<TaskId> in_flight_ ABSL_GUARDED_BY(mu_);
  uint64_t tasks_done_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t duplicates_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t tasks_dropped_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace

absl::Status RunWorker(const WorkerOptions& options, WorkerSummary* summary) {
  if (options.server.empty()) {
    return absl::InvalidArgumentError("no server address; pass --server=HOST:PORT");
  }
  if (options.slots < 1 && !(options.slots == 0 && options.device.is_gpu_backend())) {
    return absl::InvalidArgumentError(absl::StrCat(
        "--slots must be at least 1 (or 0 on a GPU: chosen from its memory), got ", options.slots));
  }
  if (absl::Status s = CheckDevice(options.device); !s.ok()) return s;
  if (options.clock == nullptr) return absl::InvalidArgumentError("WorkerOptions.clock is null");
  // No separate connect step: Register's retries (on options.clock) cover a
  // server that is not up yet, and a refused connection fails fast.
  absl::StatusOr<std::shared_ptr<grpc::Channel>> channel =
      NewWireChannel(options.server, options.security);
  if (!channel.ok()) return channel.status();
  Worker worker(options, *std::move(channel));
  return worker.Run(summary);
}

}  // namespace fedsim
