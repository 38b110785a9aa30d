// Internal to client/: the Worker class behind RunWorker (client/worker.h),
// shared by worker.cc (registration, the poller, the heartbeat, helpers) and
// worker_tasks.cc (training, pushing, pre-aggregation). Nothing outside
// client/ includes it.
#ifndef FEDSIM_CLIENT_WORKER_IMPL_H_
#define FEDSIM_CLIENT_WORKER_IMPL_H_

#include <algorithm>
#include <memory>
#include <optional>
#include <set>
#include <thread>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "client/folder_run_data.h"
#include "client/lease_depth.h"
#include "client/model_cache.h"
#include "client/peer_node.h"
#include "client/worker.h"
#include "config/scenario_file.h"
#include "data/client_folder.h"
#include "proto/scenario.pb.h"
#include "rpc/aggregator_client.h"
#include "rpc/credentials.h"
#include "rpc/wire.h"
#include "runtime/gpu_batcher.h"
#include "runtime/run_setup.h"
#include "runtime/task_runner.h"
#include "util/spare_buffers.h"
#include "util/thread_pool.h"

namespace fedsim {
namespace worker_internal {

// Pause between retries of a call that failed transiently.
inline constexpr absl::Duration kRetryPause = absl::Milliseconds(200);
// Backoff while the server is silent (restarting, say): each retry waits half
// the silence so far, between kRetryPause and this.
inline constexpr absl::Duration kMaxRetryPause = absl::Seconds(2);

// Errors a retry may fix. CANCELLED is here because the worker never cancels
// its own calls: it comes from a server that is stopping (its in-flight calls
// are cancelled), and the next call then tells run_finished or Unavailable.
inline bool IsTransient(const absl::Status& s) {
  return absl::IsUnavailable(s) || absl::IsDeadlineExceeded(s) || absl::IsCancelled(s);
}

class Worker {
 public:
  // Calls over `link` when it is set, else over `channel`.
  Worker(const WorkerOptions& options, std::shared_ptr<grpc::Channel> channel,
         std::shared_ptr<LinkClient> link);

  absl::Status Run(WorkerSummary* summary);

 private:
  absl::Status RunInternal();

  // Builds the run's data from the scenario the server sent, then trains
  // tasks until the run ends.
  absl::Status Work(const wire::RegisterResponse& reg);

  // ------------------------------------------------------------------ poller

  void PollLoop();

  // Hands a leased task to the pool (its slot already counted as taken).
  // False, with the fatal status set, when the task does not decode.
  bool StartTaskLocked(const wire::Task& task, const WorkerSession& id)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  // --------------------------------------------------------------- heartbeat

  void HeartbeatLoop();

  // ------------------------------------------------------------------- tasks

  // On a training thread; the push goes to a push thread, so the slot trains
  // its next task (client/lease_depth.h) meanwhile. See wire::Task.peer_backup.
  void RunTask(const TaskSpec& spec, const WorkerSession& lease_worker,
               const std::string& peer_backup);

  void FinishTask(const TaskSpec& spec, const WorkerSession& lease_worker,
                  const absl::Status& status, bool done, bool duplicate,
                  std::vector<wire::Task> next);

  // Trains the task; *out stays null when the task is dropped. Errors
  // returned here end the worker; outcomes a retry cannot change but that
  // are not wrong (the task was cancelled or went to another worker) only
  // drop the task.
  absl::Status Train(const TaskSpec& spec, const WorkerSession& lease_worker,
                     const std::string& peer_backup, std::shared_ptr<const TaskResult>* out);

  // Pushes a trained result, asking for up to `want_tasks` tasks with the
  // answer (*next); errors as Train's.
  absl::Status Push(const TaskSpec& spec, const WorkerSession& lease_worker,
                    const std::shared_ptr<const TaskResult>& shared, uint32_t want_tasks,
                    bool* done, bool* duplicate, std::vector<wire::Task>* next);

  absl::StatusOr<std::vector<float>> Fetch(const ModelRef& ref);

  // ------------------------------------------------------- pre-aggregation

  // A fold group's tasks leased under one session (TaskSpec::fold_group):
  // how many are still to train, the trained ones' figures and the exact
  // sum of their weighted deltas. Pushed (PushFolded) once none is held.
  // A batch of one task goes as a plain update: a sum is twice a delta's
  // bytes, which matters where workers train one client a round over a
  // real network. So the first trained delta waits in `single` and joins
  // the sum only when a second task is trained. The sum is built in a
  // shared-memory slot lent by the client (AggregatorClient::SumSlot) when
  // one is free, else in `sum`.
  struct FoldBatch {
    uint64_t group = 0;
    WorkerSession session;
    int held = 0;                   // under the worker's mu_
    std::vector<TaskResult> tasks;  // under the worker's mu_; deltas empty
    absl::Mutex sum_mu;
    ExactSum sum ABSL_GUARDED_BY(sum_mu);
    std::optional<AggregatorClient::SumSlot> in_slot ABSL_GUARDED_BY(sum_mu);
    std::shared_ptr<const TaskResult> single ABSL_GUARDED_BY(sum_mu);
    double single_weight ABSL_GUARDED_BY(sum_mu) = 0;
  };

  static bool IsFolded(const TaskSpec& spec) {
    return spec.fold_group != 0 && spec.kind == TaskKind::kTrain;
  }
  // A leased task of a fold group: one more held in its batch.
  void HoldFoldedLocked(const TaskSpec& spec, const WorkerSession& lease_worker)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // After training (`result` null when the task was dropped): adds the
  // delta to its batch's sum and, when it was the batch's last held task,
  // hands the batch to a push thread.
  void FoldTask(const TaskSpec& spec, const WorkerSession& lease_worker, absl::Status status,
                std::shared_ptr<const TaskResult> result);
  void PushBatch(const std::shared_ptr<FoldBatch>& batch);
  // Moves fold_depth_ to LeaseDepth::FoldDepth(), the free leases with it.
  void FollowFoldDepthLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // Free leases the poller waits for before it asks for tasks.
  int PollMinLocked() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return fold_mode_ ? std::max(1, fold_depth_ * slots_ / 2) : 1;
  }
  // Fold tasks held and not trained yet.
  uint32_t UntrainedLocked() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    uint32_t held = 0;
    for (const auto& [key, batch] : folds_) held += static_cast<uint32_t>(batch->held);
    return held;
  }

  // ----------------------------------------------------------------- helpers

  // For a transient error: pauses (backing off, see kMaxRetryPause) and
  // returns true while the server has been silent for at most
  // server_lost_timeout_s; otherwise records the fatal Unavailable and
  // returns false. Other errors are fatal at once.
  bool HandleTransient(const absl::Status& s, const char* what);

  void Reregister(uint64_t stale_id);

  // Pushes go through a shared-memory segment when the server offered it
  // (this worker runs on its machine) and one can be made; else they stream.
  void UseSharedMemory(const wire::RegisterResponse& reg);

  void MarkContact();

  bool Stopped();

  void SetFatalLocked(absl::Status status) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  void Warn(const std::string& message);

  void TaskLog(const TaskSpec& spec, const char* what);

  const WorkerOptions options_;
  Clock* const clock_;
  WorkerIdentity identity_;
  AggregatorClient client_;
  ModelCache cache_;
  std::unique_ptr<RunData> own_data_;  // loaded here, unless options_.preloaded_data is used
  const RunData* data_ = nullptr;
  std::unique_ptr<TaskRunner> runner_;
  std::unique_ptr<ThreadPool> pool_;     // trains the leased tasks; `slots` threads
  std::unique_ptr<ThreadPool> pushers_;  // pushes their results; `slots` threads
  std::unique_ptr<PeerNode> peer_;       // peer-to-peer runs' client models
  double time_scale_ = 0;
  absl::Duration heartbeat_interval_ = absl::Milliseconds(500);

  // Every wait is a condition on the state below (absl re-checks conditions
  // whenever mu_ is released), so there is no condition variable to signal.
  absl::Mutex register_mu_ ABSL_ACQUIRED_BEFORE(mu_);
  absl::Mutex mu_;
  bool stop_ ABSL_GUARDED_BY(mu_) = false;
  absl::Status fatal_ ABSL_GUARDED_BY(mu_);
  WorkerSession session_ ABSL_GUARDED_BY(mu_);  // id and session from the last Register
  // The scenario of the first registration; a re-registration must match.
  std::string scenario_text_ ABSL_GUARDED_BY(mu_);
  absl::Time last_contact_ ABSL_GUARDED_BY(mu_);
  // The pool's size: options_.slots, or on a GPU with slots 0 the batch
  // size chosen at registration (AutoGpuSlots).
  int slots_ = options_.slots;
  // Leases this worker may still take: lease_depth_.depth() per slot, less those it
  // holds (queued, training or pushing).
  int free_slots_ ABSL_GUARDED_BY(mu_) = 0;
  LeaseDepth lease_depth_ ABSL_GUARDED_BY(mu_);
  std::set<TaskId> in_flight_ ABSL_GUARDED_BY(mu_);
  // Pre-aggregation: on since the first task of a fold group; the open
  // batches by (group, worker id of the lease); the next batch's number.
  bool fold_mode_ ABSL_GUARDED_BY(mu_) = false;
  // Tasks held per slot while pre-aggregating (LeaseDepth::FoldDepth); the
  // poller asks for half of them at a time, so one GetTask serves several.
  int fold_depth_ ABSL_GUARDED_BY(mu_) = LeaseDepth::kFoldMin;
  // The last poll brought fewer tasks than it asked for: the next one waits
  // until fewer held fold tasks are untrained than there are slots (PollLoop).
  bool poll_after_batch_ ABSL_GUARDED_BY(mu_) = false;
  std::map<std::pair<uint64_t, uint64_t>, std::shared_ptr<FoldBatch>> folds_ ABSL_GUARDED_BY(mu_);
  // The memory of pushed sums, for the next batches' (a new sum's zeroing
  // pass and first-touch page faults, once a round, are spared).
  SpareBuffers<int64_t> spare_sums_{2};
  uint64_t next_fold_id_ ABSL_GUARDED_BY(mu_) = 1;
  uint64_t tasks_done_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t duplicates_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t tasks_dropped_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t tasks_folded_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t sums_pushed_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace worker_internal
}  // namespace fedsim

#endif  // FEDSIM_CLIENT_WORKER_IMPL_H_
