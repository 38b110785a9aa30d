#include "sim/inprocess_transport.h"

#include <algorithm>
#include <map>
#include <optional>
#include <set>
#include <utility>

#include "absl/base/thread_annotations.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "util/spare_buffers.h"
#include "util/thread_pool.h"

namespace fedsim {
namespace {

class InProcessTransport : public Transport {
 public:
  InProcessTransport(TaskRunner* runner, ModelStore* store, const InProcessOptions& options)
      : runner_(runner),
        store_(store),
        options_(options),
        clock_(options.clock),
        pool_(std::make_unique<ThreadPool>(std::max(1, options.slots))) {}

  ~InProcessTransport() override {
    Shutdown();
    pool_.reset();  // closures still queued find the transport shut down
  }

  void Submit(const TaskSpec& task) override {
    {
      absl::MutexLock lock(&mu_);
      pending_.emplace(std::make_pair(task.due, task.id), task);
    }
    // One closure per task; it takes whichever pending task is due first
    // when it runs, not necessarily this one.
    pool_->Schedule([this] { RunEarliest(); });
  }

  absl::StatusOr<TaskResult> Await(TaskId id) override {
    absl::MutexLock lock(&mu_);
    auto ready = [&]()
                     ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return shutdown_ || done_.contains(id); };
    mu_.Await(absl::Condition(&ready));
    auto it = done_.find(id);
    if (it == done_.end()) return absl::CancelledError("the in-process transport was shut down");
    absl::StatusOr<TaskResult> r = std::move(it->second);
    done_.erase(it);
    arrival_.erase(id);
    return r;
  }

  absl::StatusOr<std::optional<TaskResult>> AwaitAny(absl::Time deadline) override {
    absl::MutexLock lock(&mu_);
    auto ready = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return shutdown_ || !done_.empty(); };
    clock_->AwaitWithDeadline(&mu_, absl::Condition(&ready), deadline);
    if (done_.empty()) {
      if (shutdown_) return absl::CancelledError("the in-process transport was shut down");
      return std::optional<TaskResult>();
    }
    // The earliest finished first: order of arrival.
    auto it = std::min_element(done_.begin(), done_.end(), [&](auto& a, auto& b) {
      return arrival_.at(a.first) < arrival_.at(b.first);
    });
    absl::StatusOr<TaskResult> r = std::move(it->second);
    arrival_.erase(it->first);
    done_.erase(it);
    if (!r.ok()) return r.status();
    return std::optional<TaskResult>(std::move(*r));
  }

  void Cancel(TaskId id) override {
    absl::MutexLock lock(&mu_);
    for (auto it = pending_.begin(); it != pending_.end(); ++it) {
      if (it->second.id == id) {
        pending_.erase(it);
        return;
      }
    }
    if (done_.erase(id) > 0) {
      arrival_.erase(id);
      return;
    }
    cancelled_.insert(id);  // running now: drop its result when it comes
  }

  void Shutdown() override {
    absl::MutexLock lock(&mu_);
    shutdown_ = true;
  }

 private:
  // The open pre-aggregated sum of one pool thread (TaskSpec::fold_group):
  // the weighted deltas of the tasks of one group it trained in a row, and
  // their results without their deltas.
  struct OpenSum {
    uint64_t group = 0;
    std::vector<int64_t> values;
    std::vector<TaskResult> results;
    std::vector<TaskSpec> specs;  // of `results`, to train them again
  };

  // One closure per submitted task. A closure whose task belongs to a fold
  // group goes on with the next tasks of the same group while they are the
  // earliest due, adding each delta into one sum and dropping the delta at
  // once: the engine then merges one sum per thread and a round, instead of
  // adding every delta itself while the slots produce more (deltas that
  // waited for it grew the heap by about 24 MB of first-touched pages on
  // the pfl recipe). The sum is exact, so the model has the same bits
  // however the tasks fall to threads. The sum's results are handed over
  // together when the thread finds no more task of its group at the front.
  void RunEarliest() {
    std::optional<OpenSum> open;
    while (true) {
      TaskSpec task;
      {
        absl::MutexLock lock(&mu_);
        if (shutdown_) return;
        const bool same_group = !pending_.empty() && open.has_value() &&
                                pending_.begin()->second.fold_group == open->group;
        if (open.has_value() && !same_group) {
          CloseLocked(std::move(*open));
          return;  // the closures of the tasks still pending take them
        }
        if (pending_.empty()) return;  // cancelled, or taken by an earlier closure
        task = std::move(pending_.begin()->second);
        pending_.erase(pending_.begin());
      }
      absl::StatusOr<TaskResult> r = Train(task);
      const bool fold = task.fold_group != 0 && options_.pre_aggregate;
      if (!fold || !r.ok() || r->delta.empty()) {
        Deliver(task.id, std::move(r));
        if (!fold) return;
        continue;
      }
      if (!open.has_value()) open.emplace().group = task.fold_group;
      const std::span<const float> delta = r->delta;
      const bool first = open->results.empty();
      if (first) open->values = spare_sums_->TakeSized(delta.size());
      const absl::Status added = first ? ExactSum::AssignInto(open->values, task.fold_weight, delta)
                                       : ExactSum::AddInto(open->values, task.fold_weight, delta);
      if (!added.ok()) {
        // Left out of the sum, the delta goes over on its own: the engine
        // names the task and the bad value.
        Deliver(task.id, std::move(r));
        continue;
      }
      std::vector<float>().swap(r->delta);
      open->results.push_back(*std::move(r));
      open->specs.push_back(std::move(task));
    }
  }

  absl::StatusOr<TaskResult> Train(const TaskSpec& task) {
    const absl::Time started = clock_->Now();
    absl::StatusOr<TaskResult> r;
    ModelStore::Params base = store_->Get(task.base);
    if (base == nullptr) {
      r = absl::InternalError(absl::StrCat("base model ", task.base.ToString(), " of task ",
                                           task.id, " is not in the model store"));
    } else {
      r = runner_->Run(task, *base);
    }
    if (options_.time_scale > 0) {
      clock_->SleepUntil(started + absl::Seconds(task.duration_s * options_.time_scale));
    }
    return r;
  }

  void Deliver(TaskId id, absl::StatusOr<TaskResult> r) {
    absl::MutexLock lock(&mu_);
    if (cancelled_.erase(id) > 0) return;
    arrival_[id] = arrivals_++;
    done_.emplace(id, std::move(r));
  }

  // Hands a thread's sum over as one FoldedSum shared by its tasks' results.
  // A sum that holds a task cancelled meanwhile cannot be split: its other
  // tasks go back to the queue and are trained again.
  void CloseLocked(OpenSum open) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (open.results.empty()) return;
    std::vector<bool> cancelled(open.results.size());
    bool any_cancelled = false;
    for (size_t i = 0; i < open.results.size(); ++i) {
      cancelled[i] = cancelled_.erase(open.results[i].id) > 0;
      any_cancelled |= cancelled[i];
    }
    if (any_cancelled) {
      for (size_t i = 0; i < open.results.size(); ++i) {
        if (cancelled[i]) continue;
        TaskSpec& spec = open.specs[i];
        pending_.emplace(std::make_pair(spec.due, spec.id), std::move(spec));
        pool_->Schedule([this] { RunEarliest(); });
      }
      spare_sums_->Give(std::move(open.values));
      return;
    }
    std::shared_ptr<FoldedSum> folded = NewRecycledFoldedSum(spare_sums_);
    folded->id = next_folded_id_++;
    folded->group = open.group;
    folded->sum = ExactSum::FromValues(std::move(open.values));
    for (const TaskResult& r : open.results) folded->tasks.push_back(r.id);
    std::sort(folded->tasks.begin(), folded->tasks.end());
    std::shared_ptr<const FoldedSum> shared = std::move(folded);
    for (TaskResult& r : open.results) {
      r.folded = shared;
      arrival_[r.id] = arrivals_++;
      done_.emplace(r.id, std::move(r));
    }
  }

 public:
  std::vector<std::string> Backends() const override { return {runner_->backend()}; }

 private:
  TaskRunner* const runner_;
  ModelStore* const store_;
  const InProcessOptions options_;
  Clock* const clock_;

  absl::Mutex mu_;
  std::map<std::pair<double, TaskId>, TaskSpec> pending_ ABSL_GUARDED_BY(mu_);
  std::map<TaskId, absl::StatusOr<TaskResult>> done_ ABSL_GUARDED_BY(mu_);
  std::map<TaskId, uint64_t> arrival_ ABSL_GUARDED_BY(mu_);
  uint64_t arrivals_ ABSL_GUARDED_BY(mu_) = 0;
  std::set<TaskId> cancelled_ ABSL_GUARDED_BY(mu_);
  bool shutdown_ ABSL_GUARDED_BY(mu_) = false;
  uint64_t next_folded_id_ ABSL_GUARDED_BY(mu_) = 1;
  // The memory of sums the engine is done with (FoldedSum's deleter gives it
  // back), for the next sums; shared, because a FoldedSum may outlive the
  // transport.
  const std::shared_ptr<SpareBuffers<int64_t>> spare_sums_ =
      std::make_shared<SpareBuffers<int64_t>>(std::max(2, options_.slots + 2));
  // Last member: destroyed (joined) first, while the state above is alive.
  std::unique_ptr<ThreadPool> pool_;
};

}  // namespace

std::unique_ptr<Transport> NewInProcessTransport(TaskRunner* runner, ModelStore* store,
                                                 const InProcessOptions& options) {
  return std::make_unique<InProcessTransport>(runner, store, options);
}

}  // namespace fedsim
