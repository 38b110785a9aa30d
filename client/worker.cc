#include "client/worker.h"

#include <unistd.h>

#include "client/worker_impl.h"

namespace fedsim {
namespace worker_internal {
namespace {

std::string DefaultName() {
  char host[256] = {0};
  if (gethostname(host, sizeof(host) - 1) != 0) host[0] = '\0';
  return absl::StrCat(host[0] != '\0' ? host : "localhost", ":", getpid());
}

}  // namespace

Worker::Worker(const WorkerOptions& options, std::shared_ptr<grpc::Channel> channel,
               std::shared_ptr<LinkClient> link)
    : options_(options),
      clock_(options.clock),
      client_(link != nullptr ? AggregatorClient(std::move(link))
                              : AggregatorClient(std::move(channel))),
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

absl::Status Worker::Run(WorkerSummary* summary) {
  absl::Status status = RunInternal();
  if (summary != nullptr) {
    absl::MutexLock lock(&mu_);
    summary->worker_id = session_.worker_id;
    summary->tasks_done = tasks_done_;
    summary->duplicates = duplicates_;
    summary->tasks_dropped = tasks_dropped_;
    summary->tasks_folded = tasks_folded_;
    summary->sums_pushed = sums_pushed_;
    summary->models_fetched = cache_.downloads();
    summary->bytes_fetched = client_.bytes_fetched();
    summary->bytes_pushed = client_.bytes_pushed();
    summary->bytes_shared = client_.bytes_shared();
    summary->bytes_fetched_shared = client_.bytes_fetched_shared();
    summary->bytes_from_peers = peer_ != nullptr ? peer_->bytes_fetched() : 0;
    summary->bytes_to_peers = peer_ != nullptr ? peer_->bytes_put() : 0;
  }
  return status;
}

absl::Status Worker::RunInternal() {
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
    if (reg.ok() || !IsTransient(reg.status()) || clock_->Now() >= give_up ||
        client_.link_closed()) {
      break;
    }
    clock_->SleepFor(kRetryPause);
  }
  if (!reg.ok()) {
    if (client_.link_closed()) {
      return absl::UnavailableError(
          absl::StrCat("the server (", options_.server, ") is gone: ", reg.status().message()));
    }
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

absl::Status Worker::Work(const wire::RegisterResponse& reg) {
  std::optional<config::Scenario> parsed;
  const config::Scenario* scenario = options_.preloaded_scenario;
  if (scenario == nullptr || reg.scenario_text() != options_.preloaded_scenario_text) {
    absl::StatusOr<config::Scenario> from_server = ParseScenarioText(
        reg.scenario_text(), absl::StrCat("<scenario from ", options_.server, ">"), {});
    if (!from_server.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat("the scenario sent by ", options_.server,
                       " does not parse in this build: ", from_server.status().message()));
    }
    parsed = *std::move(from_server);
    scenario = &*parsed;
  }
  if (scenario->clock().mode() == config::Clock::WALL) {
    time_scale_ = scenario->clock().time_scale();
  }
  if (options_.preloaded_data != nullptr && options_.data_dirs.empty() &&
      reg.scenario_text() == options_.preloaded_scenario_text) {
    data_ = options_.preloaded_data;
  } else {
    absl::StatusOr<RunData> data =
        options_.data_dirs.empty()
            ? BuildRunData(*scenario, options_.scenario_dir)
            : FolderRunData(*scenario, reg, options_.data_dirs, options_.server, options_.log);
    if (!data.ok()) return data.status();
    own_data_ = std::make_unique<RunData>(std::move(data).value());
    data_ = own_data_.get();
  }
  if (options_.slots == 0) {
    const int slots = AutoGpuSlots(*data_, scenario->local().batch_size(), options_.device);
    absl::MutexLock lock(&mu_);
    slots_ = slots;
    free_slots_ = slots;
  }
  runner_ =
      std::make_unique<TaskRunner>(data_, ClientCacheBytes(scenario->limits().memory_budget_mb()),
                                   TaskDevice{options_.device, slots_});
  if (options_.log != nullptr) {
    std::fprintf(options_.log,
                 "fedsim client: connected to %s%s as worker %llu (%d slots on %s, scenario "
                 "'%s', %llu params%s)\n",
                 options_.server.c_str(), options_.server_link_fd >= 0 ? " over a local link" : "",
                 static_cast<unsigned long long>(reg.worker_id()), slots_,
                 options_.device.ToString().c_str(), scenario->name().c_str(),
                 static_cast<unsigned long long>(reg.num_params()),
                 own_data_ == nullptr ? ", data shared with the process that forked it" : "");
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

void Worker::PollLoop() {
  while (true) {
    uint32_t free = 0;
    std::optional<uint32_t> untrained;  // fold tasks held, not yet trained
    WorkerSession id;
    {
      absl::MutexLock lock(&mu_);
      auto ready = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
        return stop_ ||
               (free_slots_ >= PollMinLocked() &&
                !(poll_after_batch_ && UntrainedLocked() >= static_cast<uint32_t>(slots_)));
      };
      mu_.Await(absl::Condition(&ready));
      if (stop_) return;
      free = static_cast<uint32_t>(free_slots_);
      id = session_;
      if (fold_mode_) untrained = UntrainedLocked();
      poll_after_batch_ = false;
    }
    absl::StatusOr<wire::GetTaskResponse> response =
        client_.GetTask(id, free, options_.long_poll_s, untrained);
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
    absl::MutexLock lock(&mu_);
    // Fewer tasks than asked: the server has none for us now (the round's
    // are leased), and the next poll would park until the next round while
    // this worker's slots train, waking the server's threads for nothing
    // meanwhile. It goes once a slot has no untrained task left instead.
    poll_after_batch_ =
        fold_mode_ && static_cast<uint32_t>(response->tasks_size()) < free && !stop_;
  }
}

bool Worker::StartTaskLocked(const wire::Task& task, const WorkerSession& id) {
  absl::StatusOr<TaskSpec> spec = TaskFromWire(task);
  if (!spec.ok()) {
    SetFatalLocked(spec.status());
    return false;
  }
  in_flight_.insert(spec->id);
  if (IsFolded(*spec)) HoldFoldedLocked(*spec, id);
  pool_->Schedule([this, spec = *std::move(spec), id, backup = task.peer_backup()] {
    RunTask(spec, id, backup);
  });
  return true;
}

void Worker::HeartbeatLoop() {
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

bool Worker::HandleTransient(const absl::Status& s, const char* what) {
  absl::MutexLock lock(&mu_);
  if (stop_) return false;
  if (!IsTransient(s)) {
    SetFatalLocked(absl::Status(
        s.code(), absl::StrCat(what, " to ", options_.server, " failed: ", s.message())));
    return false;
  }
  if (client_.link_closed()) {
    // The process that serves the link ended: no retry can reach it.
    SetFatalLocked(absl::UnavailableError(
        absl::StrCat("lost the fedsim server (", options_.server, "): ", what, ": ", s.message())));
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

void Worker::Reregister(uint64_t stale_id) {
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

void Worker::UseSharedMemory(const wire::RegisterResponse& reg) {
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

void Worker::MarkContact() {
  absl::MutexLock lock(&mu_);
  last_contact_ = clock_->Now();
}

bool Worker::Stopped() {
  absl::MutexLock lock(&mu_);
  return stop_;
}

void Worker::SetFatalLocked(absl::Status status) {
  if (fatal_.ok()) fatal_ = std::move(status);
  stop_ = true;
}

void Worker::Warn(const std::string& message) {
  if (options_.log == nullptr) return;
  std::fprintf(options_.log, "fedsim client: %s\n", message.c_str());
  std::fflush(options_.log);
}

void Worker::TaskLog(const TaskSpec& spec, const char* what) {
  if (options_.task_log == nullptr) return;
  std::fprintf(options_.task_log, "fedsim client: task %llu (client %u, from %s): %s\n",
               static_cast<unsigned long long>(spec.id), spec.client, spec.base.ToString().c_str(),
               what);
  std::fflush(options_.task_log);
}

}  // namespace worker_internal

absl::Status RunWorker(const WorkerOptions& options, WorkerSummary* summary) {
  // Owned from here, so that every return below closes it.
  std::shared_ptr<LinkClient> link =
      options.server_link_fd >= 0 ? std::make_shared<LinkClient>(options.server_link_fd) : nullptr;
  if (options.server.empty()) {
    return absl::InvalidArgumentError("no server address; pass --server=HOST:PORT");
  }
  if (options.slots < 1 && !(options.slots == 0 && options.device.is_gpu_backend())) {
    return absl::InvalidArgumentError(absl::StrCat(
        "--slots must be at least 1 (or 0 on a GPU: chosen from its memory), got ", options.slots));
  }
  if (absl::Status s = CheckDevice(options.device); !s.ok()) return s;
  if (options.clock == nullptr) return absl::InvalidArgumentError("WorkerOptions.clock is null");
  if (link != nullptr) {
    worker_internal::Worker worker(options, nullptr, std::move(link));
    return worker.Run(summary);
  }
  // No separate connect step: Register's retries (on options.clock) cover a
  // server that is not up yet, and a refused connection fails fast.
  absl::StatusOr<std::shared_ptr<grpc::Channel>> channel =
      NewWireChannel(options.server, options.security);
  if (!channel.ok()) return channel.status();
  worker_internal::Worker worker(options, *std::move(channel), nullptr);
  return worker.Run(summary);
}

}  // namespace fedsim
