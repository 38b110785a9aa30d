#include "sim/engine.h"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <string>
#include <unordered_map>

#include "absl/strings/str_cat.h"
#include "runtime/local_recipe.h"
#include "sim/engine_impl.h"
#include "util/hash.h"
#include "util/rng.h"
#include "util/status_macros.h"

namespace fedsim {

absl::Status Engine::Impl::Dispatch(const fedsim::Dispatch& d) {
  if (d.client >= clients_.size()) {
    return absl::InternalError(absl::StrCat(RuleName(), " selected unknown client ", d.client));
  }
  PrefetchClientRows(d.client);
  ClientInfo& info = clients_[d.client];
  if (info.busy || !info.available) {
    return absl::InternalError(absl::StrCat(RuleName(), " selected client ", d.client, " which is ",
                                            info.busy ? "busy" : "unavailable"));
  }
  const ModelRef base = d.base.value_or(ModelRef::Global(version_));
  // Client models that live on workers (core/client_models.h) are not in
  // the store: their workers hold them.
  const bool on_workers = !base.is_global() && transport_->client_models() != nullptr;
  if (!(base == ModelRef::Global(version_)) && !on_workers && store_->Get(base) == nullptr) {
    return absl::InternalError(absl::StrCat(RuleName(), " dispatched client ", d.client,
                                            " on model ", base.ToString(),
                                            ", which was never published"));
  }
  const TaskId id = next_task_id_++;
  // Built in place: a task's spec carries the local-training message, which
  // is costly to move at a million events per second. Nothing below fails.
  InFlight& entry = in_flight_[id];  // a node: the reference outlives later inserts
  TaskSpec& spec = entry.spec;
  spec.id = id;
  spec.client = d.client;
  spec.base = base;
  spec.seed = Rng(config_.seed, "task", id).NextU64();
  spec.local = config_.local;
  uint64_t examples = config_.examples_per_task[d.client];
  const LocalOverrides& o = d.overrides;
  if (o.prox_mu) spec.local.set_prox_mu(*o.prox_mu);
  if (o.lr_scale) spec.local.set_lr(spec.local.lr() * *o.lr_scale);
  if (o.momentum) spec.local.set_momentum(*o.momentum);
  if (o.sam_rho) {
    if (*o.sam_rho > 0) {
      spec.local.mutable_sam()->set_rho(*o.sam_rho);
    } else {
      spec.local.clear_sam();
    }
  }
  if (o.steps) {
    spec.local.set_steps(*o.steps);
    examples = uint64_t{*o.steps} * spec.local.batch_size();
  }
  std::optional<double> duration;
  if (config_.duration_override) duration = config_.duration_override(id, d.client);
  if (!duration) {
    // Costlier local steps (SAM, adversarial training) process the same
    // examples several times over.
    const double cost = ComputeCostMultiplier(spec.local);
    const uint64_t work =
        cost == 1 ? examples
                  : static_cast<uint64_t>(std::llround(static_cast<double>(examples) * cost));
    duration = TaskSeconds(config_.profiles[d.client], work, model_bytes_, config_.jitter_sigma,
                           config_.seed, id, d.client);
  }
  spec.duration_s = *duration;
  spec.due = now_ + *duration;
  if (d.fold_weight && fold_group_ != 0) {
    spec.fold_group = fold_group_;
    spec.fold_weight = *d.fold_weight;
  }

  ++dispatches_[d.client];
  TaskRecord rec;
  rec.id = id;
  rec.client = d.client;
  rec.base = base;
  rec.start = now_;
  rec.duration = *duration;
  rec.seed = spec.seed;
  entry.record = rec;
  info.busy = true;
  SetIdle(d.client);
  Ref(base);
  if (source_->queues_completions()) queue_.Push(now_ + *duration, EventKind::kTaskFinish, id);
  transport_->Submit(entry.spec);
  ++dispatched_;
  bytes_down_ += model_bytes_;
  observer_->OnDispatch(rec);
  return absl::OkStatus();
}

absl::Status Engine::Impl::HandleArrival(TaskResult result) {
  auto it = in_flight_.find(result.id);
  if (it == in_flight_.end()) return absl::OkStatus();  // cancelled meanwhile
  const TaskRecord rec = it->second.record;
  const bool lost = it->second.lost;
  in_flight_.erase(it);
  if (lost) {
    --lost_in_flight_;
    return absl::OkStatus();
  }
  ClientInfo& info = clients_[rec.client];
  info.busy = false;
  SetIdle(rec.client);

  ClientUpdate update;
  update.task_id = rec.id;
  update.client = rec.client;
  update.base = rec.base;
  update.num_examples = result.num_examples;
  update.dispatch_time = rec.start;
  update.arrival_time = now_;
  update.staleness = rec.base.is_global() ? version_ - rec.base.version : 0;
  update.delta = std::move(result.delta);
  update.metrics = std::move(result.metrics);
  update.folded = std::move(result.folded);
  const uint64_t staleness = update.staleness;
  bytes_up_ += model_bytes_;
  absl::Status verdict = algorithm_->Accept(*this, std::move(update));
  if (!verdict.ok()) ++dropped_;
  observer_->OnArrival(rec, now_, staleness, verdict);
  pending_unrefs_.push_back(rec.base);
  if (!verdict.ok() && verdict.code() != absl::StatusCode::kFailedPrecondition &&
      verdict.code() != absl::StatusCode::kInvalidArgument) {
    return RuleError(verdict, "Accept");  // not a refusal by rule: a failure
  }
  return absl::OkStatus();
}

absl::Status Engine::Impl::AfterEvent() {
  // A rule may become ready more than once per event (e.g. several FedFix
  // windows passed at once); the guard catches a rule that never stops.
  for (int guard = 0; !stopped_ && algorithm_->ReadyToCommit(*this); ++guard) {
    if (guard > 1000000) {
      return absl::InternalError(
          absl::StrCat(RuleName(), " stayed ready to commit after 1e6 commits"));
    }
    FEDSIM_RETURN_IF_ERROR(ApplyCommit(algorithm_->Commit(*this, *this), false));
  }
  if (!stopped_) {
    Rng rng(config_.seed, "select", select_calls_++);
    absl::StatusOr<std::vector<fedsim::Dispatch>> dispatches = algorithm_->Select(*this, rng);
    if (!dispatches.ok()) return RuleError(dispatches.status(), "Select");
    // One fold group per Select call, named by its first task (unique for the run).
    fold_group_ = folds_allowed_ ? next_task_id_ : 0;
    if (!dispatches->empty()) {  // most events select nothing: no batch to mark
      transport_->BeginBatch();
      absl::Status dispatched = absl::OkStatus();
      for (const auto& d : *dispatches) {
        dispatched = Dispatch(d);
        if (!dispatched.ok()) break;
      }
      transport_->EndBatch();
      FEDSIM_RETURN_IF_ERROR(dispatched);
    }
    std::optional<VirtualTime> deadline = algorithm_->NextDeadline();
    if (deadline && *deadline >= now_ && deadline != scheduled_deadline_) {
      scheduled_deadline_ = deadline;
      queue_.Push(*deadline, EventKind::kTimer);
    }
  }
  for (const ModelRef& ref : pending_unrefs_) Unref(ref);
  pending_unrefs_.clear();
  return absl::OkStatus();
}

void Engine::Impl::SetAvailable(ClientId c, bool available) {
  if (clients_[c].available == available) return;
  clients_[c].available = available;
  SetIdle(c);
  observer_->OnAvailability(now_, c, available);
}

bool Engine::Impl::SyncConnections() {
  if (!config_.wall_clock) return false;
  const std::optional<std::vector<bool>> connected = transport_->ConnectedClients();
  if (!connected.has_value()) return false;
  bool changed = false;
  for (size_t i = 0; i < clients_.size() && i < connected->size(); ++i) {
    changed |= clients_[i].available != (*connected)[i];
    SetAvailable(static_cast<ClientId>(i), (*connected)[i]);
  }
  return changed;
}

void Engine::Impl::HandleScripted(const ScriptedChange& change) {
  const ClientId c = change.client;
  switch (change.kind) {
    case ScriptedChange::Kind::kJoin:
      SetAvailable(c, true);
      return;
    case ScriptedChange::Kind::kLeave:
      SetAvailable(c, false);
      return;
    case ScriptedChange::Kind::kDropout: {
      // Its task in flight never reports.
      for (auto& [id, entry] : in_flight_) {
        if (entry.record.client != c || entry.lost) continue;
        entry.lost = true;
        ++lost_in_flight_;
        transport_->Cancel(id);
        clients_[c].busy = false;
        pending_unrefs_.push_back(entry.record.base);
        algorithm_->OnTaskLost(*this, id, c);
        observer_->OnTaskLost(entry.record, now_, "scripted dropout");
        break;
      }
      SetAvailable(c, false);
      SetIdle(c);
      return;
    }
  }
}

absl::Status Engine::Impl::HandleEvent(NextEvent next) {
  const Event& ev = next.event;
  switch (ev.kind) {
    case EventKind::kTaskFinish: {
      auto it = in_flight_.find(ev.arg);
      if (it == in_flight_.end()) return absl::OkStatus();
      if (it->second.lost) {
        --lost_in_flight_;
        in_flight_.erase(it);
        return absl::OkStatus();
      }
      if (!next.arrived.has_value()) {
        absl::StatusOr<TaskResult> r = transport_->Await(ev.arg);
        if (!r.ok() && StopRequested()) {
          // Interrupted while waiting: the event goes back untouched, so the
          // checkpoint taken at the stop still holds it.
          queue_.Unpop(ev);
          unpopped_on_stop_ = true;
          return absl::OkStatus();
        }
        if (!r.ok()) {
          return absl::Status(r.status().code(),
                              absl::StrCat("waiting for the update of task ", ev.arg, " (client ",
                                           it->second.record.client, "): ", r.status().message()));
        }
        next.arrived = std::move(*r);
      }
      return HandleArrival(std::move(*next.arrived));
    }
    case EventKind::kTimer:
      if (scheduled_deadline_ && *scheduled_deadline_ == ev.time) scheduled_deadline_.reset();
      if (absl::Status s = algorithm_->OnTimer(*this); !s.ok()) return RuleError(s, "OnTimer");
      return absl::OkStatus();
    case EventKind::kEvaluate:
      FEDSIM_RETURN_IF_ERROR(Evaluate());
      queue_.Push(ev.time + config_.eval_every_virtual_s, EventKind::kEvaluate);
      return absl::OkStatus();
    case EventKind::kConnections:  // handled by the loop
      return absl::OkStatus();
    case EventKind::kAvailability:
      SetAvailable(static_cast<ClientId>(ev.arg), ev.flag);
      if (auto ch = changes_ != nullptr ? changes_->Next() : std::nullopt) {
        ++changes_consumed_;
        queue_.Push(ch->time, EventKind::kAvailability, ch->client, ch->available);
      }
      return absl::OkStatus();
    case EventKind::kScripted:
      HandleScripted(config_.scripted[ev.arg]);
      return absl::OkStatus();
    case EventKind::kStop:
      Stop("max_virtual_s");
      return absl::OkStatus();
  }
  return absl::OkStatus();
}

void Engine::Impl::PrepareClients() {
  model_bytes_ = global_.size() * sizeof(float);
  dispatches_.assign(clients_.size(), 0);
  for (size_t i = 0; i < clients_.size(); ++i) {
    ClientInfo& c = clients_[i];
    c.busy = false;
    c.expected_duration =
        ExpectedTaskSeconds(config_.profiles[i], config_.examples_per_task[i], model_bytes_);
    c.download_s = DownloadSeconds(config_.profiles[i], model_bytes_);
    c.upload_s = UploadSeconds(config_.profiles[i], model_bytes_);
    if (config_.participation != nullptr) {
      c.participation_prob = config_.participation->probability(static_cast<ClientId>(i));
      c.available = config_.participation->AvailableAt(static_cast<ClientId>(i), 0.0);
    }
    SetIdle(static_cast<ClientId>(i));
  }
}

void Engine::Impl::PrepareMetrics() {
  // The fixed sample of client models, when the rule keeps one per client.
  if (config_.eval_client_sample > 0 && !clients_.empty() && !algorithm_->ClientModel(0).empty()) {
    const uint64_t k = std::min<uint64_t>(config_.eval_client_sample, clients_.size());
    for (uint64_t c :
         Rng(config_.seed, "eval_clients").SampleWithoutReplacement(clients_.size(), k)) {
      eval_clients_.push_back(static_cast<ClientId>(c));
    }
    std::sort(eval_clients_.begin(), eval_clients_.end());
  }
  ComputeColumns();
  observer_->OnStart(columns_);
}

absl::Status Engine::Impl::StartRun() {
  PrepareClients();
  store_->Put(ModelRef::Global(0), std::make_shared<const std::vector<float>>(global_));
  if (absl::Status s = algorithm_->Start(*this, *this); !s.ok()) {
    return absl::Status(s.code(), absl::StrCat(RuleName(), " cannot start: ", s.message()));
  }
  PrepareMetrics();
  if (config_.max_virtual_s > 0) queue_.Push(config_.max_virtual_s, EventKind::kStop);
  if (config_.eval_every_virtual_s > 0) {
    queue_.Push(config_.eval_every_virtual_s, EventKind::kEvaluate);
  }
  for (size_t i = 0; i < config_.scripted.size(); ++i) {
    queue_.Push(config_.scripted[i].at, EventKind::kScripted, i);
  }
  if (config_.participation != nullptr && config_.participation->time_based()) {
    changes_ = config_.participation->Changes();
    if (auto ch = changes_->Next()) {
      ++changes_consumed_;
      queue_.Push(ch->time, EventKind::kAvailability, ch->client, ch->available);
    }
  }
  (void)SyncConnections();             // a deployment: who is there at the start
  FEDSIM_RETURN_IF_ERROR(Evaluate());  // the initial model, row 0
  return AfterEvent();
}

absl::StatusOr<RunSummary> Engine::Impl::Run() {
  if (config_.resume_from != nullptr) {
    FEDSIM_RETURN_IF_ERROR(ResumeRun(*config_.resume_from));
  } else {
    FEDSIM_RETURN_IF_ERROR(StartRun());
  }
  while (!stopped_) {
    if (StopRequested()) {
      Stop("interrupted");
      break;
    }
    const VirtualTime before = now_;
    absl::StatusOr<std::optional<NextEvent>> waited = source_->Next(queue_, &now_, num_busy() > 0);
    if (!waited.ok()) {
      // A transport gives up waiting when asked to stop: the run is
      // interrupted, not failed (its checkpoint is taken below).
      if (StopRequested()) {
        Stop("interrupted");
        break;
      }
      return waited.status();
    }
    std::optional<NextEvent> next = *std::move(waited);
    if (!next.has_value()) {
      if (StopRequested()) {
        Stop("interrupted");
        break;
      }
      return absl::FailedPreconditionError(
          absl::StrCat("the run stalled at virtual time ", now_, " after ", version_,
                       " commits: no task in flight, no timer, and ", RuleName(),
                       " started no client (", idle_.size(),
                       " idle and available). Check participation/availability, or add a stop "
                       "condition that is reached earlier"));
    }
    // Who is connected: nothing for the rule to react to unless the client's
    // availability changes. Skipping the rest keeps a deployment whose
    // clients stay connected selecting exactly as the simulation of its
    // scenario does (Select's random stream counts its calls), and one that
    // loses and regains clients as its replay does (an "avail" event each).
    if (next->event.kind == EventKind::kConnections) {
      const auto c = static_cast<ClientId>(next->event.arg);
      if (c >= clients_.size() || clients_[c].available == next->event.flag) continue;
      SetAvailable(c, next->event.flag);
    } else {
      FEDSIM_RETURN_IF_ERROR(HandleEvent(std::move(*next)));
    }
    if (unpopped_on_stop_) {
      now_ = before;
      Stop("interrupted");
      break;
    }
    FEDSIM_RETURN_IF_ERROR(AfterEvent());
    FEDSIM_RETURN_IF_ERROR(MaybeCheckpoint());
  }
  // An interrupted run keeps a checkpoint of where it stopped, taken before
  // the end-of-run flush, so that resuming continues as if never stopped.
  if (stop_reason_ == "interrupted") {
    if (absl::Status s = TakeCheckpoint(false); !s.ok()) {
      // Peer-to-peer runs: workers stopped by the same Ctrl-C take the
      // client models with them.
      return absl::Status(
          s.code(),
          absl::StrCat("interrupted, but the checkpoint at the stop failed (", s.message(),
                       "); --resume continues from the last checkpoint, at commit ",
                       last_checkpoint_version_));
    }
  }

  // No result is awaited after the loop: what is still in flight is
  // cancelled before the final flush and evaluation, so that the workers can
  // go meanwhile.
  for (auto& [id, entry] : in_flight_) transport_->Cancel(id);
  ReleaseWorkers();
  absl::StatusOr<std::optional<CommitResult>> flushed = algorithm_->Finish(*this, *this);
  if (!flushed.ok()) return RuleError(flushed.status(), "Finish");
  if (flushed->has_value()) FEDSIM_RETURN_IF_ERROR(ApplyCommit(std::move(**flushed), true));
  if (!last_eval_version_ || *last_eval_version_ != version_) {
    FEDSIM_RETURN_IF_ERROR(Evaluate());
  }

  RunSummary s;
  s.final_version = version_;
  s.virtual_time = now_;
  s.wall_s = source_->WallSeconds();
  s.updates_applied = applied_;
  s.updates_dropped = dropped_;
  s.tasks_dispatched = dispatched_;
  s.final_accuracy = last_accuracy_;
  s.final_loss = last_loss_;
  s.stop_reason = stop_reason_;
  s.final_model_hash = Sha256Hex(std::span<const float>(global_));
  // A run that ended by itself leaves a checkpoint that says so; an
  // interrupted one keeps the resumable checkpoint taken above.
  if (stop_reason_ != "interrupted") FEDSIM_RETURN_IF_ERROR(TakeCheckpoint(true));
  observer_->OnFinish(s);
  return s;
}

Engine::Engine(EngineConfig config, Algorithm* algorithm, Transport* transport, ModelStore* store,
               EvaluatorInterface* evaluator, RunObserver* observer)
    : impl_(std::make_unique<Impl>(std::move(config), algorithm, transport, store, evaluator,
                                   observer)) {}
Engine::~Engine() = default;
absl::StatusOr<RunSummary> Engine::Run() { return impl_->Run(); }
const std::vector<float>& Engine::global_model() const { return impl_->global_model(); }
const std::vector<std::string>& Engine::metric_columns() const { return impl_->metric_columns(); }
void Engine::RequestStop() { impl_->RequestStop(); }

}  // namespace fedsim
