// Engine::Impl, shared by the files that implement it: the event loop
// (engine.cc), evaluation and commits (engine_metrics.cc) and checkpoints
// (engine_state.cc). Internal to sim/; include sim/engine.h instead.
//
// Not thread-safe; the engine's one thread (RequestStop excepted).
#ifndef FEDSIM_SIM_ENGINE_IMPL_H_
#define FEDSIM_SIM_ENGINE_IMPL_H_

#include <algorithm>
#include <atomic>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "proto/checkpoint.pb.h"
#include "sim/engine.h"
#include "sim/event_source.h"
#include "sim/idle_set.h"
#include "sim/participation.h"

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
        // Moved, not copied: at 10^6 clients a copy is 56 MB.
        clients_(std::move(config_.clients)),
        idle_(clients_.size()),
        global_(config_.initial_params) {
    auto stop = [this] { return StopRequested(); };
    source_ = config_.wall_clock ? NewWallEventSource(config_.clock, transport_, stop)
                                 : NewVirtualEventSource(config_.clock);
    folds_allowed_ =
        !config_.wall_clock &&
        std::none_of(config_.scripted.begin(), config_.scripted.end(), [](const ScriptedChange& c) {
          return c.kind == ScriptedChange::Kind::kDropout;
        });
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
    const auto id = static_cast<ClientId>(idle_.Nth(k));
    // A client drawn here is usually dispatched next: start loading its rows
    // while the rule decides.
    PrefetchClientRows(id);
    return id;
  }
  // Starts loading every per-client row Dispatch reads (at 10^6 clients each
  // is a cache miss), so the misses overlap instead of following one another.
  void PrefetchClientRows(ClientId id) const {
    __builtin_prefetch(&clients_[id]);
    __builtin_prefetch(&config_.examples_per_task[id]);
    __builtin_prefetch(&config_.profiles[id]);
    __builtin_prefetch(&dispatches_[id]);
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
  ClientModels* remote_client_models() override { return transport_->client_models(); }
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
    TaskSpec spec;  // as submitted (a resumed run submits it again)
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
  // Transport::ReleaseWorkers, once, when the config allows it.
  void ReleaseWorkers() {
    if (!config_.release_workers_at_stop || workers_released_) return;
    workers_released_ = true;
    transport_->ReleaseWorkers();
  }
  void Stop(std::string reason) {
    if (!stopped_) {
      stopped_ = true;
      stop_reason_ = std::move(reason);
    }
  }
  // Prefixes an error of the rule with its name (once).
  absl::Status RuleError(const absl::Status& s, const char* during) const {
    return absl::Status(s.code(),
                        absl::StrCat(RuleName(), " failed in ", during, ": ", s.message()));
  }

  absl::Status StartRun();
  // Common to a fresh start and a resume: client figures, the initial
  // metrics columns and the availability stream.
  void PrepareClients();
  // The sample of client models to score and the metrics columns (OnStart).
  void PrepareMetrics();
  // engine_state.cc: a resumed run's start, and checkpoints.
  absl::Status ResumeRun(const ckpt::EngineState& state);
  absl::Status TakeCheckpoint(bool finished);
  // After an event: a checkpoint when one is due.
  absl::Status MaybeCheckpoint();
  absl::Status Dispatch(const Dispatch& d);
  absl::Status HandleArrival(TaskResult result);
  absl::Status HandleEvent(NextEvent next);
  absl::Status AfterEvent();
  absl::Status Evaluate();
  absl::Status ApplyCommit(absl::StatusOr<CommitResult> result, bool final_flush);
  void HandleScripted(const ScriptedChange& change);
  void SetAvailable(ClientId c, bool available);
  // Wall clock on a transport that tracks connected clients: each client is
  // available exactly while a worker holding its data is connected.
  // Returns whether any client's availability changed.
  bool SyncConnections();
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
  // Worker pre-aggregation (core/task.h TaskSpec::fold_group): allowed when
  // nothing can take a dispatched task back (virtual clock, no scripted
  // dropouts); the group of the Select call being dispatched (0 = none).
  bool folds_allowed_ = false;
  uint64_t fold_group_ = 0;
  std::unordered_map<TaskId, InFlight> in_flight_;
  size_t lost_in_flight_ = 0;
  absl::flat_hash_map<ModelRef, int, ModelRefHash> refs_;  // no node per task
  std::unordered_map<ClientId, ModelRef> latest_client_model_;
  std::vector<ModelRef> pending_unrefs_;
  std::optional<VirtualTime> scheduled_deadline_;
  std::unique_ptr<ParticipationModel::ChangeStream> changes_;
  uint64_t changes_consumed_ = 0;     // availability changes taken from changes_
  std::vector<uint64_t> dispatches_;  // tasks dispatched per client
  Version last_checkpoint_version_ = 0;
  // When the last periodic checkpoint ended and how long it took, on
  // config_.clock (see MaybeCheckpoint).
  absl::Time last_checkpoint_end_ = absl::InfinitePast();
  absl::Duration last_checkpoint_cost_ = absl::ZeroDuration();
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
  bool workers_released_ = false;  // Transport::ReleaseWorkers was called
  // HandleEvent put its event back because a stop request ended its wait.
  bool unpopped_on_stop_ = false;
  std::string stop_reason_;
  std::atomic<bool> stop_requested_{false};
};

}  // namespace fedsim

#endif  // FEDSIM_SIM_ENGINE_IMPL_H_
