#include "sim/inprocess_transport.h"

#include <algorithm>
#include <condition_variable>
#include <deque>
#include <map>
#include <set>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"

namespace fedsim {
namespace {

class InProcessTransport : public Transport {
 public:
  InProcessTransport(TaskRunner* runner, ModelStore* store, const InProcessOptions& options)
      : runner_(runner), store_(store), options_(options) {
    const int n = std::max(1, options.slots);
    for (int i = 0; i < n; ++i) threads_.emplace_back([this] { WorkLoop(); });
  }
  ~InProcessTransport() override {
    Shutdown();
    for (auto& t : threads_) t.join();
  }

  void Submit(const TaskSpec& task) override {
    std::lock_guard<std::mutex> lock(mu_);
    pending_.emplace(std::make_pair(task.due, task.id), task);
    work_cv_.notify_one();
  }

  absl::StatusOr<TaskResult> Await(TaskId id) override {
    std::unique_lock<std::mutex> lock(mu_);
    while (true) {
      auto it = done_.find(id);
      if (it != done_.end()) {
        absl::StatusOr<TaskResult> r = std::move(it->second);
        done_.erase(it);
        return r;
      }
      if (shutdown_) return absl::CancelledError("the in-process transport was shut down");
      done_cv_.wait(lock);
    }
  }

  absl::StatusOr<std::optional<TaskResult>> AwaitAny(absl::Time deadline) override {
    std::unique_lock<std::mutex> lock(mu_);
    while (true) {
      if (!done_.empty()) {
        // The earliest finished first: order of arrival.
        auto it = std::min_element(done_.begin(), done_.end(), [&](auto& a, auto& b) {
          return arrival_[a.first] < arrival_[b.first];
        });
        absl::StatusOr<TaskResult> r = std::move(it->second);
        arrival_.erase(it->first);
        done_.erase(it);
        if (!r.ok()) return r.status();
        return std::optional<TaskResult>(std::move(*r));
      }
      if (shutdown_) return absl::CancelledError("the in-process transport was shut down");
      const absl::Duration left = deadline - absl::Now();
      if (left <= absl::ZeroDuration()) return std::optional<TaskResult>();
      done_cv_.wait_for(lock, absl::ToChronoNanoseconds(left));
    }
  }

  void Cancel(TaskId id) override {
    std::lock_guard<std::mutex> lock(mu_);
    for (auto it = pending_.begin(); it != pending_.end(); ++it) {
      if (it->second.id == id) {
        pending_.erase(it);
        return;
      }
    }
    done_.erase(id);
    cancelled_.insert(id);
  }

  void Shutdown() override {
    std::lock_guard<std::mutex> lock(mu_);
    shutdown_ = true;
    work_cv_.notify_all();
    done_cv_.notify_all();
  }

 private:
  void WorkLoop() {
    while (true) {
      TaskSpec task;
      {
        std::unique_lock<std::mutex> lock(mu_);
        work_cv_.wait(lock, [&] { return shutdown_ || !pending_.empty(); });
        if (shutdown_) return;
        // Earliest-due first: the engine needs that result next.
        task = pending_.begin()->second;
        pending_.erase(pending_.begin());
      }
      const auto started = absl::Now();
      absl::StatusOr<TaskResult> r;
      ModelStore::Params base = store_->Get(task.base);
      if (base == nullptr) {
        r = absl::InternalError(absl::StrCat("base model ", task.base.ToString(), " of task ",
                                             task.id, " is not in the model store"));
      } else {
        r = runner_->Run(task, *base);
      }
      if (options_.time_scale > 0) {
        absl::SleepFor(absl::Seconds(task.duration_s * options_.time_scale) -
                       (absl::Now() - started));
      }
      std::lock_guard<std::mutex> lock(mu_);
      if (cancelled_.erase(task.id) > 0) continue;
      arrival_[task.id] = arrivals_++;
      done_.emplace(task.id, std::move(r));
      done_cv_.notify_all();
    }
  }

  TaskRunner* runner_;
  ModelStore* store_;
  InProcessOptions options_;
  std::mutex mu_;
  std::condition_variable work_cv_, done_cv_;
  std::map<std::pair<double, TaskId>, TaskSpec> pending_;
  std::map<TaskId, absl::StatusOr<TaskResult>> done_;
  std::map<TaskId, uint64_t> arrival_;
  uint64_t arrivals_ = 0;
  std::set<TaskId> cancelled_;
  bool shutdown_ = false;
  std::vector<std::thread> threads_;
};

}  // namespace

std::unique_ptr<Transport> NewInProcessTransport(TaskRunner* runner, ModelStore* store,
                                                 const InProcessOptions& options) {
  return std::make_unique<InProcessTransport>(runner, store, options);
}

}  // namespace fedsim
