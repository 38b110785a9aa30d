#include "sim/engine.h"

#include <algorithm>
#include <atomic>
#include <cmath>
#include <queue>
#include <string>
#include <unordered_map>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "sim/participation.h"
#include "util/hash.h"
#include "util/rng.h"
#include "util/status_macros.h"

namespace fedsim {
namespace {

// A Fenwick tree over client ids marking the idle+available ones, so rules
// can sample from a fleet of 100,000 clients in O(log N) per draw.
class IdSet {
 public:
  explicit IdSet(size_t n) : tree_(n + 1, 0), member_(n, 0) {
    for (size_t step = 1; step <= n; step <<= 1) log_ = step;
  }
  bool contains(size_t i) const { return member_[i] != 0; }
  size_t size() const { return size_; }
  void Insert(size_t i) {
    if (member_[i]) return;
    member_[i] = 1;
    ++size_;
    for (size_t j = i + 1; j < tree_.size(); j += j & (~j + 1)) tree_[j]++;
  }
  void Erase(size_t i) {
    if (!member_[i]) return;
    member_[i] = 0;
    --size_;
    for (size_t j = i + 1; j < tree_.size(); j += j & (~j + 1)) tree_[j]--;
  }
  // The k-th smallest member (0-based). REQUIRES: k < size().
  size_t Nth(size_t k) const {
    size_t pos = 0;
    uint32_t rem = static_cast<uint32_t>(k) + 1;
    for (size_t step = log_; step > 0; step >>= 1) {
      if (pos + step < tree_.size() && tree_[pos + step] < rem) {
        pos += step;
        rem -= tree_[pos];
      }
    }
    return pos;  // 1-based pos+1 holds it; 0-based id = pos
  }

 private:
  std::vector<uint32_t> tree_;
  std::vector<uint8_t> member_;
  size_t size_ = 0;
  size_t log_ = 0;
};

enum class EventKind : uint8_t {
  kTaskFinish,
  kTimer,
  kEvaluate,
  kAvailability,
  kScripted,
  kStop,
};

struct Event {
  VirtualTime time = 0;
  uint64_t seq = 0;
  EventKind kind = EventKind::kTimer;
  uint64_t arg = 0;  // task id, scripted index, client id
  bool flag = false;  // availability: becomes available
  // Earliest first; ties by sequence number.
  bool operator>(const Event& o) const {
    if (time != o.time) return time > o.time;
    return seq > o.seq;
  }
};

}  // namespace

class Engine::Impl : public FleetView {
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
        global_(config_.initial_params) {}

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
  std::span<const float> model(Version v) const override {
    if (v == version_) return global_;
    auto p = store_->Get(ModelRef::Global(v));
    if (p == nullptr) return {};
    return *p;
  }
  bool ParticipatesInRound(ClientId id, uint64_t round) const override {
    if (config_.participation == nullptr) return clients_[id].available;
    return config_.participation->InRound(id, round);
  }

  absl::StatusOr<RunSummary> Run();
  void RequestStop() { stop_requested_.store(true); }
  const std::vector<float>& global() const { return global_; }

 private:
  struct InFlight {
    TaskRecord record;
    bool lost = false;
  };

  void Push(VirtualTime t, EventKind kind, uint64_t arg = 0, bool flag = false) {
    queue_.push(Event{t, next_seq_++, kind, arg, flag});
  }
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
  void Ref(Version v) { refs_[v]++; }
  void Unref(Version v) {
    auto it = refs_.find(v);
    if (it == refs_.end()) return;
    if (--it->second == 0) {
      refs_.erase(it);
      if (v != version_) store_->Release(ModelRef::Global(v));
    }
  }
  void Stop(std::string reason) {
    if (!stopped_) {
      stopped_ = true;
      stop_reason_ = std::move(reason);
    }
  }
  double WallSeconds() const { return absl::ToDoubleSeconds(absl::Now() - wall_start_); }

  absl::Status Dispatch(const Dispatch& d);
  absl::Status HandleArrival(TaskResult result);
  absl::Status AfterEvent();
  absl::Status Evaluate();
  absl::Status CommitOnce(absl::StatusOr<CommitResult> result);
  void HandleScripted(const ScriptedChange& change);
  void SetAvailable(ClientId c, bool available);
  // Next event of the virtual clock; nullopt when nothing is left.
  std::optional<Event> NextVirtual();
  // Next event of the wall clock: a completion (returned through *arrived) or a timer.
  absl::StatusOr<std::optional<Event>> NextWall(std::optional<TaskResult>* arrived);

  EngineConfig config_;
  Algorithm* algorithm_;
  Transport* transport_;
  ModelStore* store_;
  EvaluatorInterface* evaluator_;
  RunObserver* observer_;

  std::vector<ClientInfo> clients_;
  IdSet idle_;
  mutable std::vector<ClientId> idle_sorted_;
  mutable bool idle_dirty_ = true;

  std::vector<float> global_;
  Version version_ = 0;
  VirtualTime now_ = 0;
  absl::Time wall_start_;
  std::priority_queue<Event, std::vector<Event>, std::greater<Event>> queue_;
  uint64_t next_seq_ = 0;
  TaskId next_task_id_ = 1;
  uint64_t select_calls_ = 0;
  std::unordered_map<TaskId, InFlight> in_flight_;
  size_t lost_in_flight_ = 0;
  std::unordered_map<Version, int> refs_;
  std::vector<Version> pending_unrefs_;
  std::optional<VirtualTime> scheduled_deadline_;
  uint64_t model_bytes_ = 0;

  // Figures.
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
    return absl::InternalError(absl::StrCat(std::string(algorithm_->Name()), " selected unknown client ",
                                            d.client));
  }
  ClientInfo& info = clients_[d.client];
  if (info.busy || !info.available) {
    return absl::InternalError(absl::StrCat(std::string(algorithm_->Name()), " selected client ", d.client,
                                            " which is ", info.busy ? "busy" : "unavailable"));
  }
  const TaskId id = next_task_id_++;
  TaskSpec spec;
  spec.id = id;
  spec.client = d.client;
  spec.base = ModelRef::Global(version_);
  spec.seed = Rng(config_.seed, "task", id).NextU64();
  spec.local = config_.local;
  uint64_t examples = config_.examples_per_task[d.client];
  if (d.overrides.prox_mu) spec.local.set_prox_mu(*d.overrides.prox_mu);
  if (d.overrides.steps) {
    spec.local.set_steps(*d.overrides.steps);
    examples = uint64_t{*d.overrides.steps} * spec.local.batch_size();
  }
  std::optional<double> duration;
  if (config_.duration_override) duration = config_.duration_override(id, d.client);
  if (!duration) {
    duration = TaskSeconds(config_.profiles[d.client], examples, model_bytes_,
                           config_.jitter_sigma, config_.seed, id, d.client);
  }
  spec.duration_s = *duration;
  spec.due = now_ + *duration;

  TaskRecord rec;
  rec.id = id;
  rec.client = d.client;
  rec.base_version = version_;
  rec.start = now_;
  rec.duration = *duration;
  rec.seed = spec.seed;
  in_flight_[id] = InFlight{rec, false};
  info.busy = true;
  SetIdle(d.client);
  Ref(version_);
  if (!config_.wall_clock) Push(now_ + *duration, EventKind::kTaskFinish, id);
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
  update.base_version = rec.base_version;
  update.num_examples = result.num_examples;
  update.dispatch_time = rec.start;
  update.arrival_time = now_;
  update.staleness = version_ - rec.base_version;
  update.delta = std::move(result.delta);
  update.metrics = std::move(result.metrics);
  const uint64_t staleness = update.staleness;
  bytes_up_ += model_bytes_;
  absl::Status verdict = algorithm_->Accept(*this, std::move(update));
  if (!verdict.ok()) ++dropped_;
  observer_->OnArrival(rec, now_, staleness, verdict);
  pending_unrefs_.push_back(rec.base_version);
  if (!verdict.ok() && verdict.code() != absl::StatusCode::kFailedPrecondition &&
      verdict.code() != absl::StatusCode::kInvalidArgument) {
    return verdict;  // not a refusal by rule: an algorithm failure
  }
  return absl::OkStatus();
}

absl::Status Engine::Impl::Evaluate() {
  EvalResult r = evaluator_->Evaluate(global_);
  EvalRow row;
  row.virtual_time = now_;
  row.version = version_;
  row.updates_applied = applied_;
  row.updates_dropped = dropped_;
  row.test_loss = r.count > 0 ? r.loss_sum / static_cast<double>(r.count) : 0.0;
  row.test_accuracy = r.count > 0 ? static_cast<double>(r.correct) / r.count : 0.0;
  row.bytes_down = bytes_down_;
  row.bytes_up = bytes_up_;
  row.mean_staleness = staleness_count_ > 0 ? staleness_sum_ / staleness_count_ : 0.0;
  row.max_staleness = staleness_max_;
  row.wall_s = WallSeconds();
  staleness_sum_ = 0;
  staleness_count_ = 0;
  staleness_max_ = 0;
  last_eval_version_ = version_;
  last_accuracy_ = row.test_accuracy;
  last_loss_ = row.test_loss;
  observer_->OnEvaluation(row);
  if (config_.target_accuracy > 0 && row.test_accuracy >= config_.target_accuracy) {
    Stop("target_accuracy");
  }
  return absl::OkStatus();
}

absl::Status Engine::Impl::CommitOnce(absl::StatusOr<CommitResult> result) {
  if (!result.ok()) return result.status();
  for (float v : global_) {
    if (!std::isfinite(v)) {
      return absl::InternalError(absl::StrCat(
          "the global model became non-finite at version ", version_ + 1,
          " (diverged): lower local.lr or the rule's server learning rate"));
    }
  }
  // The previous current version stays in the store only while tasks need it.
  const Version old = version_;
  ++version_;
  store_->Put(ModelRef::Global(version_), std::make_shared<const std::vector<float>>(global_));
  if (refs_.find(old) == refs_.end()) store_->Release(ModelRef::Global(old));
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
  if (config_.max_commits > 0 && version_ >= config_.max_commits) Stop("max_commits");
  return absl::OkStatus();
}

absl::Status Engine::Impl::AfterEvent() {
  // A rule may become ready more than once per event (e.g. several FedFix
  // windows passed at once); the guard catches a rule that never stops.
  for (int guard = 0; !stopped_ && algorithm_->ReadyToCommit(*this); ++guard) {
    if (guard > 1000000) {
      return absl::InternalError(absl::StrCat(std::string(algorithm_->Name()),
                                              " stayed ready to commit after 1e6 commits"));
    }
    FEDSIM_RETURN_IF_ERROR(CommitOnce(algorithm_->Commit(*this, global_)));
  }
  if (!stopped_) {
    Rng rng(config_.seed, "select", select_calls_++);
    std::vector<fedsim::Dispatch> dispatches = algorithm_->Select(*this, rng);
    for (const auto& d : dispatches) FEDSIM_RETURN_IF_ERROR(Dispatch(d));
    std::optional<VirtualTime> deadline = algorithm_->NextDeadline();
    if (deadline && *deadline >= now_ && deadline != scheduled_deadline_) {
      scheduled_deadline_ = deadline;
      Push(*deadline, EventKind::kTimer);
    }
  }
  for (Version v : pending_unrefs_) Unref(v);
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
        pending_unrefs_.push_back(entry.record.base_version);
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

std::optional<Event> Engine::Impl::NextVirtual() {
  if (queue_.empty()) return std::nullopt;
  Event ev = queue_.top();
  queue_.pop();
  now_ = ev.time;
  return ev;
}

absl::StatusOr<std::optional<Event>> Engine::Impl::NextWall(std::optional<TaskResult>* arrived) {
  while (true) {
    if (stop_requested_.load() || (config_.interrupt && config_.interrupt->load())) {
      stop_requested_.store(true);
      return std::optional<Event>();
    }
    absl::Time deadline = absl::Now() + absl::Milliseconds(200);
    if (!queue_.empty()) {
      deadline = std::min(deadline, wall_start_ + absl::Seconds(queue_.top().time));
    }
    FEDSIM_ASSIGN_OR_RETURN(std::optional<TaskResult> r, transport_->AwaitAny(deadline));
    if (r.has_value()) {
      now_ = WallSeconds();
      *arrived = std::move(r);
      return std::optional<Event>(Event{now_, 0, EventKind::kTaskFinish, (*arrived)->id, false});
    }
    if (!queue_.empty() && WallSeconds() >= queue_.top().time) {
      Event ev = queue_.top();
      queue_.pop();
      now_ = std::max(now_, ev.time);
      return std::optional<Event>(ev);
    }
    if (queue_.empty() && in_flight_.empty()) return std::optional<Event>();
  }
}

absl::StatusOr<RunSummary> Engine::Impl::Run() {
  wall_start_ = absl::Now();
  model_bytes_ = global_.size() * sizeof(float);
  for (size_t i = 0; i < clients_.size(); ++i) {
    ClientInfo& c = clients_[i];
    c.busy = false;
    c.expected_duration =
        ExpectedTaskSeconds(config_.profiles[i], config_.examples_per_task[i], model_bytes_);
    if (config_.participation != nullptr) {
      c.participation_prob = config_.participation->probability(static_cast<ClientId>(i));
      c.available = config_.participation->AvailableAt(static_cast<ClientId>(i), 0.0);
    }
    SetIdle(static_cast<ClientId>(i));
  }
  store_->Put(ModelRef::Global(0), std::make_shared<const std::vector<float>>(global_));

  if (config_.max_virtual_s > 0) Push(config_.max_virtual_s, EventKind::kStop);
  if (config_.eval_every_virtual_s > 0) Push(config_.eval_every_virtual_s, EventKind::kEvaluate);
  for (size_t i = 0; i < config_.scripted.size(); ++i) {
    Push(config_.scripted[i].at, EventKind::kScripted, i);
  }
  std::unique_ptr<ParticipationModel::ChangeStream> changes;
  if (config_.participation != nullptr && config_.participation->time_based()) {
    changes = config_.participation->Changes();
    if (auto ch = changes->Next()) Push(ch->time, EventKind::kAvailability, ch->client, ch->available);
  }

  FEDSIM_RETURN_IF_ERROR(Evaluate());  // the initial model, row 0
  FEDSIM_RETURN_IF_ERROR(AfterEvent());

  while (!stopped_) {
    if (stop_requested_.load() || (config_.interrupt && config_.interrupt->load())) {
      Stop("interrupted");
      break;
    }
    std::optional<TaskResult> arrived;
    std::optional<Event> ev;
    if (config_.wall_clock) {
      FEDSIM_ASSIGN_OR_RETURN(ev, NextWall(&arrived));
    } else {
      ev = NextVirtual();
    }
    if (!ev.has_value()) {
      if (stop_requested_.load()) {
        Stop("interrupted");
        break;
      }
      return absl::FailedPreconditionError(absl::StrCat(
          "the run stalled at virtual time ", now_, " after ", version_,
          " commits: no task in flight, no timer, and ", std::string(algorithm_->Name()),
          " started no client (", idle_.size(),
          " idle and available). Check participation/availability, or add a stop "
          "condition that is reached earlier"));
    }
    switch (ev->kind) {
      case EventKind::kTaskFinish: {
        auto it = in_flight_.find(ev->arg);
        if (it == in_flight_.end()) break;
        if (it->second.lost) {
          --lost_in_flight_;
          in_flight_.erase(it);
          break;
        }
        if (!arrived.has_value()) {
          absl::StatusOr<TaskResult> r = transport_->Await(ev->arg);
          if (!r.ok()) {
            return absl::Status(r.status().code(),
                                absl::StrCat("waiting for the update of task ", ev->arg,
                                             " (client ", it->second.record.client,
                                             "): ", r.status().message()));
          }
          arrived = std::move(*r);
        }
        FEDSIM_RETURN_IF_ERROR(HandleArrival(std::move(*arrived)));
        break;
      }
      case EventKind::kTimer:
        if (scheduled_deadline_ && *scheduled_deadline_ == ev->time) scheduled_deadline_.reset();
        break;
      case EventKind::kEvaluate:
        FEDSIM_RETURN_IF_ERROR(Evaluate());
        Push(ev->time + config_.eval_every_virtual_s, EventKind::kEvaluate);
        break;
      case EventKind::kAvailability:
        SetAvailable(static_cast<ClientId>(ev->arg), ev->flag);
        if (auto ch = changes->Next()) {
          Push(ch->time, EventKind::kAvailability, ch->client, ch->available);
        }
        break;
      case EventKind::kScripted:
        HandleScripted(config_.scripted[ev->arg]);
        break;
      case EventKind::kStop:
        Stop("max_virtual_s");
        break;
    }
    FEDSIM_RETURN_IF_ERROR(AfterEvent());
  }

  FEDSIM_ASSIGN_OR_RETURN(std::optional<CommitResult> flushed,
                          algorithm_->Finish(*this, global_));
  if (flushed.has_value()) {
    // A final flush is a commit like any other, minus the stop checks.
    const uint64_t saved_max = config_.max_commits;
    config_.max_commits = 0;
    FEDSIM_RETURN_IF_ERROR(CommitOnce(std::move(*flushed)));
    config_.max_commits = saved_max;
  }
  if (!last_eval_version_ || *last_eval_version_ != version_) {
    FEDSIM_RETURN_IF_ERROR(Evaluate());
  }
  for (auto& [id, entry] : in_flight_) transport_->Cancel(id);

  RunSummary s;
  s.final_version = version_;
  s.virtual_time = now_;
  s.wall_s = WallSeconds();
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
const std::vector<float>& Engine::global_model() const { return impl_->global(); }
void Engine::RequestStop() { impl_->RequestStop(); }

}  // namespace fedsim
