#include "server/grpc_transport.h"

#include <algorithm>
#include <optional>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "google/protobuf/text_format.h"
#include "grpcpp/health_check_service_interface.h"
#include "proto/scenario.pb.h"
#include "rpc/auth.h"
#include "rpc/chunker.h"
#include "rpc/wire.h"
#include "server/grpc_transport_impl.h"
#include "server/listener.h"

namespace fedsim {
namespace grpc_transport_internal {

ScenarioFacts ReadScenarioFacts(const std::string& scenario_text) {
  ScenarioFacts facts;
  config::Scenario scenario;
  google::protobuf::TextFormat::Parser parser;
  parser.AllowUnknownField(true);
  if (!parser.ParseFromString(scenario_text, &scenario)) return facts;
  facts.name = scenario.name();
  if (scenario.clock().mode() == config::Clock::WALL) {
    facts.wall_time_scale = scenario.clock().time_scale();
  }
  return facts;
}

GrpcTransportImpl::~GrpcTransportImpl() {
  Shutdown();
  if (reaper_.joinable()) reaper_.join();
  {
    // The links' threads end at the shutdown of their sockets; a poll
    // answered later writes to a closed link and is dropped.
    absl::MutexLock lock(&links_mu_);
    for (const std::shared_ptr<LinkEnd>& end : links_) end->ShutDown();
    for (std::thread& thread : link_threads_) thread.join();
    link_threads_.clear();
  }
  if (server_ != nullptr) {
    // Cancels what is still in flight; waits until every call is done, which
    // for a poll answered at Shutdown needs the poll timer to finish it.
    server_->Shutdown(GrpcTimeout(absl::Milliseconds(200)));
    server_->Wait();
  }
  {
    absl::MutexLock lock(&mu_);
    poll_timer_stop_ = true;
    ++poll_events_;
  }
  if (poll_timer_.joinable()) poll_timer_.join();
}

absl::Status GrpcTransportImpl::Start() {
  absl::StatusOr<std::string> instance = RandomHex(8);
  if (!instance.ok()) return instance.status();
  instance_ = *instance;
  if (!options_.listen_address.empty()) {
    absl::Status listening = Listen();
    if (!listening.ok()) return listening;
  }
  reaper_ = std::thread([this] { ReaperLoop(); });
  poll_timer_ = std::thread([this] { PollTimerLoop(); });
  return absl::OkStatus();
}

absl::Status GrpcTransportImpl::Listen() {
  ListenOptions listen;
  listen.address = options_.listen_address;
  listen.security = options_.security;
  listen.has_token = !options_.token.empty();
  listen.insecure = options_.insecure;
  absl::StatusOr<Listener> listener = StartListener(listen, &service_);
  if (!listener.ok()) return listener.status();
  server_ = std::move(listener->server);
  port_ = listener->port;
  address_ = listener->address;
  return absl::OkStatus();
}

void GrpcTransportImpl::Submit(const TaskSpec& task) {
  absl::MutexLock lock(&mu_);
  TaskState& state = tasks_[task.id];
  state = TaskState{};
  state.spec = task;
  state.seq = next_seq_++;
  state.queued = true;
  pending_.push_back(task.id);
  NoteWaitingClientLocked(task);
  if (batch_open_) {
    serve_at_batch_end_ = true;
  } else {
    ServePollsLocked(/*all=*/false);
  }
}

void GrpcTransportImpl::BeginBatch() {
  absl::MutexLock lock(&mu_);
  batch_open_ = true;
}

void GrpcTransportImpl::EndBatch() {
  absl::MutexLock lock(&mu_);
  batch_open_ = false;
  if (serve_at_batch_end_) ServePollsLocked(/*all=*/false);
  serve_at_batch_end_ = false;
}

absl::StatusOr<TaskResult> GrpcTransportImpl::Await(TaskId id) {
  absl::StatusOr<std::optional<TaskResult>> r = AwaitUntil(id, absl::InfiniteFuture());
  if (!r.ok()) return r.status();
  return **std::move(r);  // no deadline: only a result or an error ends the wait
}

absl::StatusOr<std::optional<TaskResult>> GrpcTransportImpl::AwaitUntil(TaskId id,
                                                                        absl::Time deadline) {
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
      return std::optional<TaskResult>(std::move(result));
    }
    if (shutdown_) return absl::CancelledError("transport shut down");
    if (task->second.cancelled) {
      return absl::FailedPreconditionError(absl::StrCat("Await: task ", id, " was cancelled"));
    }
    if (PeerClientLostLocked(task->second.spec.client)) {
      return absl::DataLossError(absl::StrCat(
          "task ", id, " can never run: the model of client ", task->second.spec.client,
          " was lost with its worker and no other worker held a backup; continue from the last "
          "checkpoint with --resume"));
    }
    if (clock_->Now() >= deadline) return std::optional<TaskResult>();
    absl::Status idle = WaitForResultLocked(deadline);
    if (!idle.ok()) return idle;
  }
}

absl::StatusOr<std::optional<TaskResult>> GrpcTransportImpl::AwaitAny(absl::Time deadline) {
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

void GrpcTransportImpl::Cancel(TaskId id) {
  absl::MutexLock lock(&mu_);
  auto it = tasks_.find(id);
  if (it == tasks_.end()) return;
  it->second.cancelled = true;
  WithdrawLocked(id, &it->second);
  inbox_.erase(id);
  ++result_events_;
}

std::vector<std::string> GrpcTransportImpl::Backends() const {
  absl::MutexLock lock(&mu_);
  return std::vector<std::string>(backends_.begin(), backends_.end());
}

void GrpcTransportImpl::ReleaseWorkers() {
  absl::MutexLock lock(&mu_);
  if (released_) return;
  released_ = true;
  ServePollsLocked(/*all=*/true);  // every parked poll hears run_finished
}

void GrpcTransportImpl::Shutdown() {
  absl::MutexLock lock(&mu_);
  if (shutdown_) return;
  shutdown_ = true;
  released_ = true;
  shutdown_at_ = clock_->Now();
  ++result_events_;
  ++reaper_events_;
  ServePollsLocked(/*all=*/true);  // every parked poll hears run_finished
  if (server_ != nullptr && server_->GetHealthCheckService() != nullptr) {
    server_->GetHealthCheckService()->SetServingStatus(false);
  }
}

std::shared_ptr<grpc::Channel> GrpcTransportImpl::InProcessChannel() {
  if (server_ == nullptr) return nullptr;  // no listener: links only
  return server_->InProcessChannel(WireChannelArguments());
}

GrpcTransportStats GrpcTransportImpl::stats() const {
  absl::MutexLock lock(&mu_);
  GrpcTransportStats s = stats_;
  s.workers_connected = workers_.size();
  s.polls_parked = parked_.size();
  s.workers_released = released_;
  return s;
}

void GrpcTransportImpl::SetClientExamples(std::vector<uint64_t> num_examples) {
  absl::MutexLock lock(&mu_);
  client_examples_ = std::move(num_examples);
}

void GrpcTransportImpl::SetRunProgress(const ServerRunProgress& progress) {
  absl::MutexLock lock(&mu_);
  progress_ = progress;
}

absl::Status GrpcTransportImpl::Authenticate(const ServerContextBase& context, const char* method) {
  absl::Status status = CheckCallToken(context.client_metadata(), options_.token);
  if (status.ok()) return status;
  uint64_t count;
  {
    absl::MutexLock lock(&mu_);
    count = ++stats_.unauthenticated;
  }
  // Every one of the first 10, then every 1000th: a flood cannot fill the log.
  if (count <= 10 || count % 1000 == 0) {
    Log(absl::StrCat("refused ", method, " from ", context.peer(), ": ", status.message(), " (",
                     count, " so far)"));
  }
  return status;
}

absl::Status GrpcTransportImpl::Register(const wire::RegisterRequest& request, bool local,
                                         wire::RegisterResponse* response) {
  if (request.protocol_version() != kProtocolVersion) {
    return Refuse(absl::FailedPreconditionError(absl::StrCat(
        "worker ", request.worker_name(), " speaks protocol version ", request.protocol_version(),
        ", this server speaks ", kProtocolVersion, "; run the same fedsim build on both sides")));
  }
  std::string warning;
  absl::Status identity = CheckWorkerIdentity(
      request,
      RunIdentity{options_.build_id, options_.numeric_mode, options_.numeric_fingerprint,
                  options_.accept_mismatched_workers},
      &warning);
  if (!identity.ok()) return Refuse(identity);
  if (!warning.empty()) Log(absl::StrCat("warning: ", warning));
  absl::StatusOr<std::string> session = RandomHex(16);
  if (!session.ok()) return session.status();
  absl::MutexLock lock(&mu_);
  absl::StatusOr<std::vector<uint32_t>> slots = ClaimClientsLocked(request, next_worker_id_);
  if (!slots.ok()) return Refuse(slots.status());
  uint64_t id = next_worker_id_++;
  WorkerState& worker = workers_[id];
  worker.id = id;
  worker.peer_address = request.peer_address();
  worker.holds = *slots;
  std::sort(worker.holds.begin(), worker.holds.end());
  worker.session = *session;
  worker.name = request.worker_name();
  worker.slots = request.slots();
  worker.shared_memory = local && options_.shared_memory_updates;
  backends_.insert(request.backend().empty() ? "cpu" : request.backend());
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
  response->set_session(*session);
  response->set_server_instance(instance_);
  response->set_shared_memory_updates(worker.shared_memory);
  for (uint32_t slot : *slots) {
    response->add_client_slots(slot);
    response->add_client_train_examples(slot < client_examples_.size() ? client_examples_[slot]
                                                                       : 0);
  }
  return absl::OkStatus();
}

void GrpcTransportImpl::GetTask(PollCall* call) {
  const wire::GetTaskRequest& request = *call->request;
  const double wait_s = std::clamp(request.wait_s(), 0.0, options_.long_poll_max_wait_s);
  {
    absl::MutexLock lock(&mu_);
    call->deadline = clock_->Now() + absl::Seconds(wait_s);
    if (SeenLocked(request.worker_id(), request.session())) {
      if (!AnswerPollLocked(call)) {
        call->key = next_poll_key_++;
        parked_.emplace(call->key, call);
        // The poll timer wakes only for a deadline earlier than it watches.
        auto at = poll_deadlines_.emplace(call->deadline, call->key).first;
        if (at == poll_deadlines_.begin()) ++poll_events_;
        return;
      }
    } else {
      call->answer = UnknownWorker(request.worker_id());
    }
  }
  call->Answer(call->answer);
}

void GrpcTransportImpl::CancelPoll(PollCall* call) {
  {
    absl::MutexLock lock(&mu_);
    // Not parked: answered, and finished or about to be by the poll timer.
    auto it = parked_.find(call->key);
    if (it == parked_.end() || it->second != call) return;
    parked_.erase(it);
    poll_deadlines_.erase({call->deadline, call->key});
    ++poll_events_;  // the poll timer stops watching its deadline
  }
  call->Answer(absl::CancelledError("GetTask cancelled"));
}

bool GrpcTransportImpl::AnswerPollLocked(PollCall* call) {
  const wire::GetTaskRequest& request = *call->request;
  const uint64_t worker_id = request.worker_id();
  if (released_) {
    auto w = workers_.find(worker_id);
    if (w != workers_.end()) w->second.told_finished = true;
    ++reaper_events_;
    call->response->set_run_finished(true);
    call->answer = absl::OkStatus();
    return true;
  }
  auto w = workers_.find(worker_id);
  if (w == workers_.end() || !ConstantTimeEquals(w->second.session, request.session())) {
    call->answer = UnknownWorker(worker_id);
    return true;
  }
  const absl::Time now = clock_->Now();
  // While the engine submits a batch, a lease would see only its first
  // tasks (and the fair share of a fold group would be one task).
  if (batch_open_ && request.max_tasks() != 0 && now < call->deadline) {
    serve_at_batch_end_ = true;
    return false;
  }
  if (HasTaskForLocked(w->second) || request.max_tasks() == 0 || now >= call->deadline) {
    w->second.last_seen = now;
    w->second.untrained =
        request.has_untrained() ? std::optional<uint32_t>(request.untrained()) : std::nullopt;
    LeaseLocked(worker_id, &w->second, request.max_tasks(), call->response);
    call->answer = absl::OkStatus();
    return true;
  }
  return false;
}

void GrpcTransportImpl::CountBytesSent(uint64_t bytes) {
  absl::MutexLock lock(&mu_);
  stats_.bytes_sent += bytes;
}

absl::Status GrpcTransportImpl::BeginPush(const PushClaim& claim, std::optional<TaskId>* claimed) {
  absl::MutexLock lock(&mu_);
  SeenLocked(claim.worker, claim.session, /*live_only=*/false);
  absl::Status status = CheckLeaseLocked(claim.worker, claim.session, claim.task);
  if (!status.ok()) return status;
  TaskState& task = tasks_.at(claim.task);
  if (task.receiving) {
    return absl::ResourceExhaustedError(absl::StrCat("an update for task ", claim.task,
                                                     " is already arriving; send one at a time"));
  }
  task.receiving = true;
  *claimed = claim.task;
  ++stats_.updates_arriving;
  return absl::OkStatus();
}

absl::Status GrpcTransportImpl::CheckPushHeader(const PushClaim& claim, DecodedUpdate* update) {
  // The header must say what the metadata said; then the task's details.
  if (update->worker != claim.worker || update->session != claim.session ||
      update->result.id != claim.task) {
    return absl::InvalidArgumentError(absl::StrCat(
        "the update's header names worker ", update->worker, " and task ", update->result.id,
        ", its metadata worker ", claim.worker, " and task ", claim.task));
  }
  absl::MutexLock lock(&mu_);
  absl::Status status = CheckHeaderLocked(*update);
  if (!status.ok()) return status;
  if (tasks_.at(update->result.id).spec.kind == TaskKind::kEvaluate) {
    // Figures only; the count is the client's test examples, checked by the
    // evaluator against the client list.
    update->expected_params = 0;
    return absl::OkStatus();
  }
  if (!home_.empty() && !update->result.base.is_global()) {
    // Peer-to-peer: the client's home keeps y_i and sends the figures only.
    if (!IsHomeLocked(update->result.client, update->worker)) {
      return absl::FailedPreconditionError(
          absl::StrCat("client ", update->result.client, "'s model moved to another worker; ",
                       "the result of task ", update->result.id, " is not taken from this one"));
    }
    update->expected_params = 0;
  }
  if (update->shm_slot > 0) {
    absl::Status attached = AttachSegmentLocked(update);
    if (!attached.ok()) return attached;
  }
  return UseServerExamplesLocked(update);
}

absl::Status GrpcTransportImpl::AttachSegmentLocked(DecodedUpdate* update) {
  absl::StatusOr<std::shared_ptr<const MappedUpdateSegment>> segment =
      WorkerSegmentLocked(update->worker, &WorkerState::segment, update->shm_segment, num_params_,
                          MappedUpdateSegment::Access::kRead, "updates");
  if (!segment.ok()) return segment.status();
  if (update->shm_slot > (*segment)->slots()) {
    return absl::InvalidArgumentError(absl::StrCat("update for task ", update->result.id,
                                                   " names slot ", update->shm_slot, " of ",
                                                   (*segment)->slots()));
  }
  update->segment = *std::move(segment);
  return absl::OkStatus();
}

absl::Status GrpcTransportImpl::EndPush(absl::Status status, const PushClaim& claim,
                                        std::optional<TaskId> claimed, uint64_t bytes,
                                        DecodedUpdate* update, wire::PushUpdateResponse* response) {
  if (status.ok()) status = CommitUpdate(std::move(*update), response);
  absl::MutexLock lock(&mu_);
  if (claimed.has_value()) {
    tasks_.at(*claimed).receiving = false;
    --stats_.updates_arriving;
  }
  stats_.bytes_received += bytes;
  if (!status.ok()) ++stats_.rejected;
  if (status.ok()) LeaseWithAnswerLocked(claim.worker, claim.session, claim.want_tasks, response);
  return status;
}

void GrpcTransportImpl::LeaseWithAnswerLocked(uint64_t worker_id, const std::string& session,
                                              uint32_t want, wire::PushUpdateResponse* response) {
  if (want == 0 || released_) return;
  auto w = workers_.find(worker_id);
  if (w == workers_.end() || !ConstantTimeEquals(w->second.session, session)) return;
  wire::GetTaskResponse leased;
  w->second.last_seen = clock_->Now();
  LeaseLocked(worker_id, &w->second, std::min(want, std::max<uint32_t>(w->second.slots, 1)),
              &leased);
  response->mutable_tasks()->Swap(leased.mutable_tasks());
}

absl::Status GrpcTransportImpl::Heartbeat(const wire::HeartbeatRequest& request,
                                          wire::HeartbeatResponse* response) {
  absl::MutexLock lock(&mu_);
  if (!SeenLocked(request.worker_id(), request.session())) {
    response->set_unknown_worker(true);
  } else if (released_) {
    workers_.at(request.worker_id()).told_finished = true;
    ++reaper_events_;
  }
  response->set_run_finished(released_);
  return absl::OkStatus();
}

absl::Status GrpcTransportImpl::RunStatus(wire::RunStatusResponse* response) {
  absl::MutexLock lock(&mu_);
  response->set_run_id(options_.run_id);
  response->set_scenario_name(facts_.name);
  response->set_commits(progress_.commits);
  response->set_max_commits(progress_.max_commits);
  response->set_virtual_time_s(progress_.virtual_time_s);
  response->set_has_accuracy(progress_.has_accuracy);
  response->set_last_accuracy(progress_.last_accuracy);
  response->set_workers_connected(static_cast<uint32_t>(workers_.size()));
  uint32_t in_flight = 0;
  for (const auto& [id, w] : workers_) in_flight += static_cast<uint32_t>(w.leased.size());
  response->set_tasks_in_flight(in_flight);
  response->set_tasks_pending(static_cast<uint32_t>(pending_.size()));
  response->set_updates_accepted(stats_.updates_accepted);
  response->set_leases_expired(stats_.leases_expired);
  response->set_finished(shutdown_);
  response->set_uptime_s(absl::ToDoubleSeconds(clock_->Now() - started_at_));
  const FleetStatus fleet = FleetLocked();
  if (fleet.clients_total > 0) {
    response->set_clients_total(fleet.clients_total);
    response->set_clients_connected(fleet.clients_connected);
    size_t more = 0;
    for (const std::string& name : MissingNamesLocked(10, &more)) {
      response->add_clients_missing(name);
    }
  }
  response->set_slowest_client(fleet.slowest_client);
  response->set_slowest_s(fleet.slowest_s);
  return absl::OkStatus();
}

absl::Status GrpcTransportImpl::UnknownWorker(uint64_t worker_id) {
  return absl::FailedPreconditionError(
      absl::StrCat("unknown worker ", worker_id,
                   " (timed out, never registered, or not its session); register again"));
}

void GrpcTransportImpl::Log(const std::string& line) const {
  if (options_.log == nullptr) return;
  std::fprintf(options_.log, "fedsim server: %s\n", line.c_str());
  std::fflush(options_.log);
}

absl::Status GrpcTransportImpl::Refuse(absl::Status status) {
  Log(absl::StrCat("refused a worker: ", status.message()));
  return status;
}

}  // namespace grpc_transport_internal

absl::StatusOr<std::unique_ptr<GrpcTransport>> StartGrpcTransport(const GrpcServerOptions& options,
                                                                  std::string scenario_text,
                                                                  uint64_t num_params,
                                                                  ModelStore* store) {
  if (store == nullptr) return absl::InvalidArgumentError("StartGrpcTransport: store is null");
  if (options.clock == nullptr) return absl::InvalidArgumentError("StartGrpcTransport: no clock");
  if (!(options.heartbeat_interval_s > 0) ||
      !(options.heartbeat_timeout_s > options.heartbeat_interval_s)) {
    return absl::InvalidArgumentError(
        absl::StrCat("heartbeat timeout (", options.heartbeat_timeout_s,
                     " s) must be larger than the heartbeat interval (",
                     options.heartbeat_interval_s, " s), and both positive"));
  }
  if (options.chunk_bytes == 0 || options.chunk_bytes > kMaxChunkBytes) {
    return absl::InvalidArgumentError(
        absl::StrCat("chunk_bytes must be in 1..", kMaxChunkBytes, ", got ", options.chunk_bytes));
  }
  if (!(options.task_deadline_slack_s >= 0) || !(options.task_deadline_factor >= 0)) {
    return absl::InvalidArgumentError(
        absl::StrCat("task deadline slack (", options.task_deadline_slack_s, " s) and factor (",
                     options.task_deadline_factor, ") must not be negative"));
  }
  if (!options.token.empty()) {
    absl::Status format = CheckTokenFormat(options.token, "the server's options");
    if (!format.ok()) return format;
  }
  auto transport = std::make_unique<grpc_transport_internal::GrpcTransportImpl>(
      options, std::move(scenario_text), num_params, store);
  absl::Status status = transport->Start();
  if (!status.ok()) return status;
  return std::unique_ptr<GrpcTransport>(std::move(transport));
}

}  // namespace fedsim
