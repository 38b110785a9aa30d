#include "sim/inprocess_transport.h"

#include <algorithm>
#include <map>
#include <set>
#include <utility>

#include "absl/base/thread_annotations.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
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
    auto ready = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
      return shutdown_ || done_.contains(id);
    };
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
  void RunEarliest() {
    TaskSpec task;
    {
      absl::MutexLock lock(&mu_);
      if (shutdown_ || pending_.empty()) return;  // cancelled, or taken by an earlier closure
      task = std::move(pending_.begin()->second);
      pending_.erase(pending_.begin());
    }
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
    absl::MutexLock lock(&mu_);
    if (cancelled_.erase(task.id) > 0) return;
    arrival_[task.id] = arrivals_++;
    done_.emplace(task.id, std::move(r));
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
  // Last member: destroyed (joined) first, while the state above is alive.
  std::unique_ptr<ThreadPool> pool_;
};

}  // namespace

std::unique_ptr<Transport> NewInProcessTransport(TaskRunner* runner, ModelStore* store,
                                                 const InProcessOptions& options) {
  return std::make_unique<InProcessTransport>(runner, store, options);
}

}  // namespace fedsim
