#include "sim/engine.h"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <string>
#include <unordered_map>

#include "absl/strings/str_cat.h"
#include "runtime/local_recipe.h"
#include "sim/event_source.h"
#include "sim/idle_set.h"
#include "sim/participation.h"
#include "util/hash.h"
#include "util/rng.h"
#include "util/status_macros.h"

namespace fedsim {

class Engine::Impl : public FleetView, public ModelBank {
 public:
  Impl(EngineConfig config, Algorithm* algorithm, Transport* transport, ModelStore* store,
       EvaluatorInterface* evaluator, RunObserver* observer)
      : config_(std::move(config)),
        algorithm_(algorithm),
        transport_(transport),
        store_(store),
        evaluator_(evaluator),
        observer_(observer),
        clients_(config_.clients),
        idle_(config_.clients.size()),
        global_(config_.initial_params) {
    auto stop = [this] { return StopRequested(); };
    source_ = config_.wall_clock
                  ? NewWallEventSource(config_.clock, transport_, stop)
                  : NewVirtualEventSource(config_.clock);
  }

  // ---- FleetView
  size_t num_clients() const override { return clients_.size(); }
  const ClientInfo& client(ClientId id) const override { return clients_[id]; }
  std::span<const ClientId> idle_available() const override {
    if (idle_dirty_) {
      idle_sorted_.clear();
      idle_sorted_.reserve(idle_.size());
      for (size_t i = 0; i < clients_.size(); ++i) {
        if (idle_.contains(i)) idle_sorted_.push_back(static_cast<ClientId>(i));
      }
      idle_dirty_ = false;
    }
    return idle_sorted_;
  }
  size_t num_idle_available() const override { return idle_.size(); }
  ClientId nth_idle_available(size_t k) const override {
    return static_cast<ClientId>(idle_.Nth(k));
  }
  size_t num_busy() const override { return in_flight_.size() - lost_in_flight_; }
  VirtualTime now() const override { return now_; }
  Version version() const override { return version_; }
  std::span<const float> model(const ModelRef& ref) const override {
    if (ref == ModelRef::Global(version_)) return global_;
    ModelStore::Params p = store_->Get(ref);
    if (p == nullptr) return {};
    return *p;
  }
  bool ParticipatesInRound(ClientId id, uint64_t round) const override {
    if (config_.participation == nullptr) return clients_[id].available;
    return config_.participation->InRound(id, round);
  }

  // ---- ModelBank
  std::span<float> global() override { return global_; }
  void Publish(const ModelRef& ref, std::shared_ptr<const std::vector<float>> params) override {
    // Global versions are the engine's to publish; a rule naming one is a bug
    // that Dispatch reports when the model is missing.
    if (ref.is_global()) return;
    store_->Put(ref, std::move(params));
    auto [it, inserted] = latest_client_model_.try_emplace(ref.client, ref);
    if (!inserted && it->second != ref) {
      const ModelRef older = it->second;
      it->second = ref;
      if (refs_.find(older) == refs_.end()) store_->Release(older);
    }
  }

  absl::StatusOr<RunSummary> Run();
  void RequestStop() { stop_requested_.store(true); }
  const std::vector<float>& global_model() const { return global_; }
  const std::vector<std::string>& metric_columns() const { return columns_; }

 private:
  struct InFlight {
    TaskRecord record;
    bool lost = false;
  };

  bool StopRequested() const {
    return stop_requested_.load() || (config_.interrupt != nullptr && config_.interrupt->load());
  }
  std::string RuleName() const { return std::string(algorithm_->Name()); }
  void SetIdle(ClientId c) {
    const ClientInfo& info = clients_[c];
    const bool should = info.available && !info.busy;
    if (should != idle_.contains(c)) {
      if (should) {
        idle_.Insert(c);
      } else {
        idle_.Erase(c);
      }
      idle_dirty_ = true;
    }
  }
  void Ref(const ModelRef& ref) { refs_[ref]++; }
  // A model no task needs any more leaves the store unless it is the current
  // global version or the latest model the rule published for its client.
  void Unref(const ModelRef& ref) {
    auto it = refs_.find(ref);
    if (it == refs_.end()) return;
    if (--it->second > 0) return;
    refs_.erase(it);
    if (ref.is_global()) {
      if (ref.version != version_) store_->Release(ref);
    } else {
      auto latest = latest_client_model_.find(ref.client);
      if (latest == latest_client_model_.end() || latest->second != ref) store_->Release(ref);
    }
  }
  void Stop(std::string reason) {
    if (!stopped_) {
      stopped_ = true;
      stop_reason_ = std::move(reason);
    }
  }
  // Prefixes an error of the rule with its name (once).
  absl::Status RuleError(const absl::Status& s, const char* during) const {
    return absl::Status(s.code(), absl::StrCat(RuleName(), " failed in ", during, ": ",
                                               s.message()));
  }

  absl::Status StartRun();
  absl::Status Dispatch(const Dispatch& d);
  absl::Status HandleArrival(TaskResult result);
  absl::Status HandleEvent(NextEvent next);
  absl::Status AfterEvent();
  absl::Status Evaluate();
  absl::Status ApplyCommit(absl::StatusOr<CommitResult> result, bool final_flush);
  void HandleScripted(const ScriptedChange& change);
  void SetAvailable(ClientId c, bool available);
  void ComputeColumns();

  EngineConfig config_;
  Algorithm* algorithm_;
  Transport* transport_;
  ModelStore* store_;
  EvaluatorInterface* evaluator_;
  RunObserver* observer_;
  std::unique_ptr<EventSource> source_;

  std::vector<ClientInfo> clients_;
  IdleSet idle_;
  mutable std::vector<ClientId> idle_sorted_;
  mutable bool idle_dirty_ = true;

  std::vector<float> global_;
  Version version_ = 0;
  VirtualTime now_ = 0;
  EventQueue queue_;
  TaskId next_task_id_ = 1;
  uint64_t select_calls_ = 0;
  std::unordered_map<TaskId, InFlight> in_flight_;
  size_t lost_in_flight_ = 0;
  std::unordered_map<ModelRef, int, ModelRefHash> refs_;
  std::unordered_map<ClientId, ModelRef> latest_client_model_;
  std::vector<ModelRef> pending_unrefs_;
  std::optional<VirtualTime> scheduled_deadline_;
  std::unique_ptr<ParticipationModel::ChangeStream> changes_;
  uint64_t model_bytes_ = 0;

  // Metrics.
  std::vector<std::string> columns_;
  std::vector<ClientId> eval_clients_;  // the fixed sample of client models
  uint64_t applied_ = 0, dropped_ = 0, dispatched_ = 0;
  uint64_t bytes_down_ = 0, bytes_up_ = 0;
  double staleness_sum_ = 0;
  uint64_t staleness_count_ = 0, staleness_max_ = 0;
  std::optional<Version> last_eval_version_;
  double last_accuracy_ = 0, last_loss_ = 0;

  bool stopped_ = false;
  std::string stop_reason_;
  std::atomic<bool> stop_requested_{false};
};

absl::Status Engine::Impl::Dispatch(const fedsim::Dispatch& d) {
  if (d.client >= clients_.size()) {
    return absl::InternalError(absl::StrCat(RuleName(), " selected unknown client ", d.client));
  }
  ClientInfo& info = clients_[d.client];
  if (info.busy || !info.available) {
    return absl::InternalError(absl::StrCat(RuleName(), " selected client ", d.client,
                                            " which is ", info.busy ? "busy" : "unavailable"));
  }
  const ModelRef base = d.base.value_or(ModelRef::Global(version_));
  if (!(base == ModelRef::Global(version_)) && store_->Get(base) == nullptr) {
    return absl::InternalError(absl::StrCat(RuleName(), " dispatched client ", d.client,
                                            " on model ", base.ToString(),
                                            ", which was never published"));
  }
  const TaskId id = next_task_id_++;
  TaskSpec spec;
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

  TaskRecord rec;
  rec.id = id;
  rec.client = d.client;
  rec.base = base;
  rec.start = now_;
  rec.duration = *duration;
  rec.seed = spec.seed;
  in_flight_[id] = InFlight{rec, false};
  info.busy = true;
  SetIdle(d.client);
  Ref(base);
  if (source_->queues_completions()) queue_.Push(now_ + *duration, EventKind::kTaskFinish, id);
  transport_->Submit(spec);
  ++dispatched_;
  bytes_down_ += model_bytes_;
  observer_->OnDispatch(rec);
  return absl::OkStatus();
}

absl::Status Engine::Impl::HandleArrival(TaskResult result) {
  auto it = in_flight_.find(result.id);
  if (it == in_flight_.end()) return absl::OkStatus();  // cancelled meanwhile
  InFlight entry = it->second;
  in_flight_.erase(it);
  if (entry.lost) {
    --lost_in_flight_;
    return absl::OkStatus();
  }
  const TaskRecord& rec = entry.record;
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

void Engine::Impl::ComputeColumns() {
  columns_ = BaseMetricColumns();
  for (const std::string& name : evaluator_->ExtraMetricNames()) columns_.push_back(name);
  if (!eval_clients_.empty()) {
    for (const char* name :
         {"client_accuracy_mean", "client_accuracy_min", "client_accuracy_max"}) {
      columns_.push_back(name);
    }
  }
  for (const std::string& name : algorithm_->MetricNames()) columns_.push_back(name);
}

absl::Status Engine::Impl::Evaluate() {
  MetricsRow row;
  row.virtual_time = now_;
  row.version = version_;
  row.wall_s = source_->WallSeconds();
  MetricValues& v = row.values;
  v = evaluator_->Evaluate(global_);
  v["virtual_time"] = now_;
  v["version"] = static_cast<double>(version_);
  v["updates_applied"] = static_cast<double>(applied_);
  v["updates_dropped"] = static_cast<double>(dropped_);
  v["bytes_down"] = static_cast<double>(bytes_down_);
  v["bytes_up"] = static_cast<double>(bytes_up_);
  v["mean_staleness"] = staleness_count_ > 0 ? staleness_sum_ / staleness_count_ : 0.0;
  v["max_staleness"] = static_cast<double>(staleness_max_);
  if (!eval_clients_.empty()) {
    double sum = 0, lo = 1, hi = 0;
    for (ClientId c : eval_clients_) {
      const double acc = evaluator_->Accuracy(algorithm_->ClientModel(c));
      sum += acc;
      lo = std::min(lo, acc);
      hi = std::max(hi, acc);
    }
    v["client_accuracy_mean"] = sum / static_cast<double>(eval_clients_.size());
    v["client_accuracy_min"] = lo;
    v["client_accuracy_max"] = hi;
  }
  algorithm_->CollectMetrics(*this, &v);
  staleness_sum_ = 0;
  staleness_count_ = 0;
  staleness_max_ = 0;
  last_eval_version_ = version_;
  last_accuracy_ = row.Get("test_accuracy");
  last_loss_ = row.Get("test_loss");
  observer_->OnEvaluation(row);
  if (config_.target_accuracy > 0 && last_accuracy_ >= config_.target_accuracy) {
    Stop("target_accuracy");
  }
  return absl::OkStatus();
}

absl::Status Engine::Impl::ApplyCommit(absl::StatusOr<CommitResult> result, bool final_flush) {
  if (!result.ok()) return RuleError(result.status(), final_flush ? "Finish" : "Commit");
  for (float x : global_) {
    if (!std::isfinite(x)) {
      return absl::InternalError(absl::StrCat(
          "the global model became non-finite at version ", version_ + 1,
          " (diverged): lower local.lr or the rule's server learning rate"));
    }
  }
  // The previous current version stays in the store only while tasks need it.
  const ModelRef old = ModelRef::Global(version_);
  ++version_;
  store_->Put(ModelRef::Global(version_), std::make_shared<const std::vector<float>>(global_));
  if (refs_.find(old) == refs_.end()) store_->Release(old);
  for (const AppliedUpdate& a : result->applied) {
    staleness_sum_ += static_cast<double>(a.staleness);
    staleness_max_ = std::max(staleness_max_, a.staleness);
    ++staleness_count_;
  }
  applied_ += result->applied.size();
  observer_->OnCommit(now_, version_, *result);
  if (config_.eval_every_commits > 0 && version_ % config_.eval_every_commits == 0) {
    FEDSIM_RETURN_IF_ERROR(Evaluate());
  }
  if (!final_flush && config_.max_commits > 0 && version_ >= config_.max_commits) {
    Stop("max_commits");
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
    for (const auto& d : *dispatches) FEDSIM_RETURN_IF_ERROR(Dispatch(d));
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
    case EventKind::kAvailability:
      SetAvailable(static_cast<ClientId>(ev.arg), ev.flag);
      if (auto ch = changes_->Next()) {
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

absl::Status Engine::Impl::StartRun() {
  model_bytes_ = global_.size() * sizeof(float);
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
  store_->Put(ModelRef::Global(0), std::make_shared<const std::vector<float>>(global_));
  if (absl::Status s = algorithm_->Start(*this, *this); !s.ok()) {
    return absl::Status(s.code(), absl::StrCat(RuleName(), " cannot start: ", s.message()));
  }
  // The fixed sample of client models, when the rule keeps one per client.
  if (config_.eval_client_sample > 0 && !clients_.empty() &&
      !algorithm_->ClientModel(0).empty()) {
    const uint64_t k = std::min<uint64_t>(config_.eval_client_sample, clients_.size());
    for (uint64_t c : Rng(config_.seed, "eval_clients").SampleWithoutReplacement(clients_.size(), k)) {
      eval_clients_.push_back(static_cast<ClientId>(c));
    }
    std::sort(eval_clients_.begin(), eval_clients_.end());
  }
  ComputeColumns();
  observer_->OnStart(columns_);

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
      queue_.Push(ch->time, EventKind::kAvailability, ch->client, ch->available);
    }
  }
  FEDSIM_RETURN_IF_ERROR(Evaluate());  // the initial model, row 0
  return AfterEvent();
}

absl::StatusOr<RunSummary> Engine::Impl::Run() {
  FEDSIM_RETURN_IF_ERROR(StartRun());
  while (!stopped_) {
    if (StopRequested()) {
      Stop("interrupted");
      break;
    }
    FEDSIM_ASSIGN_OR_RETURN(std::optional<NextEvent> next,
                            source_->Next(queue_, &now_, num_busy() > 0));
    if (!next.has_value()) {
      if (StopRequested()) {
        Stop("interrupted");
        break;
      }
      return absl::FailedPreconditionError(absl::StrCat(
          "the run stalled at virtual time ", now_, " after ", version_,
          " commits: no task in flight, no timer, and ", RuleName(), " started no client (",
          idle_.size(),
          " idle and available). Check participation/availability, or add a stop "
          "condition that is reached earlier"));
    }
    FEDSIM_RETURN_IF_ERROR(HandleEvent(std::move(*next)));
    FEDSIM_RETURN_IF_ERROR(AfterEvent());
  }

  absl::StatusOr<std::optional<CommitResult>> flushed = algorithm_->Finish(*this, *this);
  if (!flushed.ok()) return RuleError(flushed.status(), "Finish");
  if (flushed->has_value()) FEDSIM_RETURN_IF_ERROR(ApplyCommit(std::move(**flushed), true));
  if (!last_eval_version_ || *last_eval_version_ != version_) {
    FEDSIM_RETURN_IF_ERROR(Evaluate());
  }
  for (auto& [id, entry] : in_flight_) transport_->Cancel(id);

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
  observer_->OnFinish(s);
  return s;
}

Engine::Engine(EngineConfig config, Algorithm* algorithm, Transport* transport,
               ModelStore* store, EvaluatorInterface* evaluator, RunObserver* observer)
    : impl_(std::make_unique<Impl>(std::move(config), algorithm, transport, store, evaluator,
                                   observer)) {}
Engine::~Engine() = default;
absl::StatusOr<RunSummary> Engine::Run() { return impl_->Run(); }
const std::vector<float>& Engine::global_model() const { return impl_->global_model(); }
const std::vector<std::string>& Engine::metric_columns() const { return impl_->metric_columns(); }
void Engine::RequestStop() { impl_->RequestStop(); }

}  // namespace fedsim
