// Checkpoints of the engine (engine.h: EngineConfig::checkpoint_sink and
// resume_from). A checkpoint is taken between events, so the state is exactly
// what the loop holds there: the queue, the tasks in flight (submitted again
// on resume: a task is a pure function of its spec, so its result is the
// same), the clients' flags, the models tasks train from, the counters and
// the algorithm's own state.
#include <algorithm>
#include <cstring>
#include <string>

#include "absl/strings/str_cat.h"
#include "sim/engine_impl.h"
#include "util/status_macros.h"

namespace fedsim {
namespace {

void RefToProto(const ModelRef& r, ckpt::ModelRef* out) {
  out->set_kind(static_cast<uint32_t>(r.kind));
  out->set_client(r.client);
  out->set_version(r.version);
}

ModelRef RefFromProto(const ckpt::ModelRef& r) {
  ModelRef out;
  out.kind = r.kind() == 1 ? ModelRef::Kind::kClient : ModelRef::Kind::kGlobal;
  out.client = r.client();
  out.version = r.version();
  return out;
}

std::string FloatBytes(std::span<const float> v) {
  return std::string(reinterpret_cast<const char*>(v.data()), v.size_bytes());
}

absl::StatusOr<std::vector<float>> FloatsFromBytes(const std::string& b, const char* what) {
  if (b.size() % sizeof(float) != 0) {
    return absl::DataLossError(absl::StrCat("checkpoint: ", what, " has a partial float"));
  }
  std::vector<float> v(b.size() / sizeof(float));
  if (!v.empty()) std::memcpy(v.data(), b.data(), b.size());  // memcpy(nullptr, ..., 0) is UB
  return v;
}

}  // namespace

absl::Status Engine::Impl::MaybeCheckpoint() {
  if (config_.checkpoint_every_commits == 0 || !config_.checkpoint_sink || stopped_) {
    return absl::OkStatus();
  }
  if (version_ < last_checkpoint_version_ + config_.checkpoint_every_commits) {
    return absl::OkStatus();
  }
  // Periodic checkpoints take at most about 1/kCheckpointSpacing of the run's
  // wall time: a large state (MIFA keeps every client's last update, 200 MB
  // for 250 MLP clients, which took 5.5 s to write here against 0.5 s for 10
  // rounds) is written less often than every N commits. Results do not
  // depend on when checkpoints are taken, only how far a crash sets a run back.
  constexpr int kCheckpointSpacing = 20;
  const absl::Time start = config_.clock->Now();
  if (start - last_checkpoint_end_ < (kCheckpointSpacing - 1) * last_checkpoint_cost_) {
    return absl::OkStatus();
  }
  absl::Status status = TakeCheckpoint(false);
  last_checkpoint_end_ = config_.clock->Now();
  last_checkpoint_cost_ = last_checkpoint_end_ - start;
  return status;
}

absl::Status Engine::Impl::TakeCheckpoint(bool finished) {
  if (!config_.checkpoint_sink) return absl::OkStatus();
  ckpt::EngineState s;
  s.set_now(now_);
  s.set_version(version_);
  s.set_next_task_id(next_task_id_);
  s.set_select_calls(select_calls_);
  s.set_next_event_seq(queue_.next_seq());
  for (const Event& e : queue_.Contents()) {
    ckpt::QueuedEvent* q = s.add_queue();
    q->set_time(e.time);
    q->set_seq(e.seq);
    q->set_kind(static_cast<uint32_t>(e.kind));
    q->set_arg(e.arg);
    q->set_flag(e.flag);
  }
  // Tasks in id order, so equal states give equal bytes.
  std::vector<TaskId> ids;
  for (const auto& [id, entry] : in_flight_) ids.push_back(id);
  std::sort(ids.begin(), ids.end());
  for (TaskId id : ids) {
    const InFlight& f = in_flight_.at(id);
    ckpt::InFlightTask* t = s.add_in_flight();
    t->set_id(id);
    t->set_client(f.spec.client);
    RefToProto(f.spec.base, t->mutable_base());
    t->set_seed(f.spec.seed);
    *t->mutable_local() = f.spec.local;
    t->set_duration_s(f.spec.duration_s);
    t->set_due(f.spec.due);
    t->set_start(f.record.start);
    t->set_lost(f.lost);
  }
  s.set_num_clients(static_cast<uint32_t>(clients_.size()));
  for (size_t i = 0; i < clients_.size(); ++i) {
    const uint32_t id = static_cast<uint32_t>(i);
    if (!clients_[i].available) s.add_unavailable_clients(id);
    if (clients_[i].busy) s.add_busy_clients(id);
    if (dispatches_[i] > 0) {
      s.add_dispatched_clients(id);
      s.add_dispatch_counts(dispatches_[i]);
    }
  }
  // The current global model, and every stored model a task in flight trains
  // from (the rule publishes its latest client models again on resume).
  ckpt::Model* current = s.add_models();
  RefToProto(ModelRef::Global(version_), current->mutable_ref());
  current->set_data(FloatBytes(global_));
  std::vector<ModelRef> needed;
  for (const auto& [ref, count] : refs_) {
    if (ref != ModelRef::Global(version_)) needed.push_back(ref);
  }
  std::sort(needed.begin(), needed.end());
  for (const ModelRef& ref : needed) {
    ModelStore::Params p = store_->Get(ref);
    ClientModels* on_workers = transport_->client_models();
    if (p == nullptr && !ref.is_global() && on_workers != nullptr) {
      // A client model its worker holds: fetched for the checkpoint.
      absl::StatusOr<std::vector<float>> x = on_workers->Get(ref.client, ref.version);
      if (!x.ok()) return x.status();
      p = std::make_shared<const std::vector<float>>(*std::move(x));
    }
    if (p == nullptr) {
      return absl::InternalError(absl::StrCat("checkpoint: model ", ref.ToString(),
                                              " of a task in flight is not in the store"));
    }
    ckpt::Model* m = s.add_models();
    RefToProto(ref, m->mutable_ref());
    m->set_data(FloatBytes(*p));
  }
  if (scheduled_deadline_) s.set_scheduled_deadline(*scheduled_deadline_);
  s.set_availability_changes_consumed(changes_consumed_);
  s.set_applied(applied_);
  s.set_dropped(dropped_);
  s.set_dispatched(dispatched_);
  s.set_bytes_down(bytes_down_);
  s.set_bytes_up(bytes_up_);
  s.set_staleness_sum(staleness_sum_);
  s.set_staleness_count(staleness_count_);
  s.set_staleness_max(staleness_max_);
  if (last_eval_version_) s.set_last_eval_version(*last_eval_version_);
  s.set_last_accuracy(last_accuracy_);
  s.set_last_loss(last_loss_);
  for (const std::string& c : columns_) s.add_metric_columns(c);
  AlgorithmState algo;
  if (absl::Status st = algorithm_->SaveState(&algo); !st.ok()) return RuleError(st, "SaveState");
  for (const auto& [key, values] : algo.scalars) {
    ckpt::AlgorithmState::Scalars& out = (*s.mutable_algorithm()->mutable_scalars())[key];
    for (double v : values) out.add_values(v);
  }
  for (const auto& [key, values] : algo.tensors) {
    (*s.mutable_algorithm()->mutable_tensors())[key] = FloatBytes(values);
  }
  s.set_finished(finished);
  s.set_stop_reason(stop_reason_);
  observer_->OnCheckpoint(&s);
  last_checkpoint_version_ = version_;
  return config_.checkpoint_sink(s);
}

absl::Status Engine::Impl::ResumeRun(const ckpt::EngineState& s) {
  const size_t n = clients_.size();
  if (s.num_clients() != n || s.dispatched_clients_size() != s.dispatch_counts_size()) {
    return absl::InvalidArgumentError(
        absl::StrCat("checkpoint: it has ", s.num_clients(), " clients, the scenario ", n));
  }
  for (const auto* ids : {&s.unavailable_clients(), &s.busy_clients(), &s.dispatched_clients()}) {
    for (uint32_t id : *ids) {
      if (id >= n) {
        return absl::InvalidArgumentError(
            absl::StrCat("checkpoint: client ", id, " is out of range (", n, " clients)"));
      }
    }
  }
  PrepareClients();
  for (size_t i = 0; i < n; ++i) {
    clients_[i].available = true;
    clients_[i].busy = false;
    dispatches_[i] = 0;
  }
  for (uint32_t id : s.unavailable_clients()) clients_[id].available = false;
  for (uint32_t id : s.busy_clients()) clients_[id].busy = true;
  for (int k = 0; k < s.dispatched_clients_size(); ++k) {
    dispatches_[s.dispatched_clients(k)] = s.dispatch_counts(k);
  }
  for (size_t i = 0; i < n; ++i) SetIdle(static_cast<ClientId>(i));
  now_ = s.now();
  version_ = s.version();
  next_task_id_ = s.next_task_id();
  select_calls_ = s.select_calls();
  // Models: the current global model first.
  for (const ckpt::Model& m : s.models()) {
    FEDSIM_ASSIGN_OR_RETURN(std::vector<float> v, FloatsFromBytes(m.data(), "a model"));
    if (v.size() != global_.size()) {
      return absl::InvalidArgumentError(absl::StrCat(
          "checkpoint: a model has ", v.size(), " parameters, the scenario's ", global_.size()));
    }
    const ModelRef ref = RefFromProto(m.ref());
    if (ref == ModelRef::Global(version_)) global_ = v;
    store_->Put(ref, std::make_shared<const std::vector<float>>(std::move(v)));
  }
  // The rule's state, then its models.
  AlgorithmState algo;
  for (const auto& [key, values] : s.algorithm().scalars()) {
    algo.scalars[key].assign(values.values().begin(), values.values().end());
  }
  for (const auto& [key, bytes] : s.algorithm().tensors()) {
    FEDSIM_ASSIGN_OR_RETURN(algo.tensors[key], FloatsFromBytes(bytes, "an algorithm tensor"));
  }
  if (absl::Status st = algorithm_->LoadState(algo); !st.ok()) return RuleError(st, "LoadState");
  if (absl::Status st = algorithm_->Resume(*this, *this); !st.ok()) {
    return RuleError(st, "Resume");
  }
  PrepareMetrics();
  if (std::vector<std::string>(s.metric_columns().begin(), s.metric_columns().end()) != columns_) {
    return absl::InvalidArgumentError(
        "checkpoint: its metrics columns differ from this run's (another scenario or build?)");
  }
  // The event queue and the availability stream, advanced past what was
  // already queued.
  std::vector<Event> events;
  for (const ckpt::QueuedEvent& q : s.queue()) {
    events.push_back(Event{q.time(), q.seq(), static_cast<EventKind>(q.kind()), q.arg(), q.flag()});
  }
  queue_.Restore(events, s.next_event_seq());
  if (config_.participation != nullptr && config_.participation->time_based()) {
    changes_ = config_.participation->Changes();
    for (uint64_t k = 0; k < s.availability_changes_consumed(); ++k) changes_->Next();
  }
  changes_consumed_ = s.availability_changes_consumed();
  if (s.has_scheduled_deadline()) scheduled_deadline_ = s.scheduled_deadline();
  applied_ = s.applied();
  dropped_ = s.dropped();
  dispatched_ = s.dispatched();
  bytes_down_ = s.bytes_down();
  bytes_up_ = s.bytes_up();
  staleness_sum_ = s.staleness_sum();
  staleness_count_ = s.staleness_count();
  staleness_max_ = s.staleness_max();
  if (s.has_last_eval_version()) last_eval_version_ = s.last_eval_version();
  last_accuracy_ = s.last_accuracy();
  last_loss_ = s.last_loss();
  last_checkpoint_version_ = version_;
  // Tasks in flight: submitted again (in id order, as they were dispatched).
  for (const ckpt::InFlightTask& t : s.in_flight()) {
    TaskSpec spec;
    spec.id = t.id();
    spec.client = t.client();
    spec.base = RefFromProto(t.base());
    spec.seed = t.seed();
    spec.local = t.local();
    spec.duration_s = t.duration_s();
    spec.due = t.due();
    TaskRecord rec;
    rec.id = spec.id;
    rec.client = spec.client;
    rec.base = spec.base;
    rec.start = t.start();
    rec.duration = spec.duration_s;
    rec.seed = spec.seed;
    in_flight_[spec.id] = InFlight{rec, t.lost(), spec};
    if (t.lost()) {
      ++lost_in_flight_;
      continue;  // its completion event is in the queue; its result is not wanted
    }
    Ref(spec.base);
    if (store_->Get(spec.base) == nullptr) {
      return absl::InvalidArgumentError(absl::StrCat("checkpoint: task ", spec.id, " trains from ",
                                                     spec.base.ToString(),
                                                     ", which the checkpoint does not hold"));
    }
    transport_->Submit(spec);
  }
  return absl::OkStatus();
}

}  // namespace fedsim
