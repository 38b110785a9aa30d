// The worker's tasks: training, pushing each result or pre-aggregating
// those of a fold group (TaskSpec::fold_group) into one sum per batch.
#include <algorithm>
#include <utility>

#include "client/worker_impl.h"

namespace fedsim {
namespace worker_internal {

void Worker::RunTask(const TaskSpec& spec, const WorkerSession& lease_worker,
                     const std::string& peer_backup) {
  std::shared_ptr<const TaskResult> result;
  absl::Status status = absl::OkStatus();
  if (!Stopped()) {  // a task still queued when the run ends is not trained
    TaskLog(spec, "training");
    const absl::Time start = clock_->Now();
    status = Train(spec, lease_worker, peer_backup, &result);
    absl::MutexLock lock(&mu_);
    const int change = lease_depth_.NoteTrain(clock_->Now() - start);
    if (fold_mode_) {
      FollowFoldDepthLocked();
    } else {
      free_slots_ += change * slots_;
    }
  }
  if (IsFolded(spec)) {
    FoldTask(spec, lease_worker, std::move(status), std::move(result));
    return;
  }
  if (result == nullptr) {
    FinishTask(spec, lease_worker, status, false, false, {});
    return;
  }
  pushers_->Schedule([this, spec, lease_worker, result = std::move(result)] {
    bool done = false;
    bool duplicate = false;
    std::vector<wire::Task> next;  // leased with the push's answer
    const absl::Time start = clock_->Now();
    absl::Status pushed = Push(spec, lease_worker, result, 1, &done, &duplicate, &next);
    {
      absl::MutexLock lock(&mu_);
      const int change = lease_depth_.NotePush(clock_->Now() - start);
      if (!fold_mode_) free_slots_ += change * slots_;
    }
    FinishTask(spec, lease_worker, pushed, done, duplicate, std::move(next));
  });
}

void Worker::FinishTask(const TaskSpec& spec, const WorkerSession& lease_worker,
                        const absl::Status& status, bool done, bool duplicate,
                        std::vector<wire::Task> next) {
  TaskLog(spec, done ? (duplicate ? "pushed (a duplicate)" : "pushed")
                     : (status.ok() ? "dropped" : "failed"));
  absl::MutexLock lock(&mu_);
  if (!status.ok()) SetFatalLocked(status);
  if (done) {
    ++tasks_done_;
    duplicates_ += duplicate;
  } else {
    ++tasks_dropped_;
  }
  in_flight_.erase(spec.id);
  // The lease goes on with the task the push brought (at most one), or
  // frees up for the poller. Once stopping, a brought task is dropped: its
  // lease runs out on the server like any other unfinished one.
  if (!next.empty() && !stop_ && StartTaskLocked(next.front(), lease_worker)) return;
  ++free_slots_;
}

void Worker::FollowFoldDepthLocked() {
  const int depth = lease_depth_.FoldDepth();
  free_slots_ += (depth - fold_depth_) * slots_;
  fold_depth_ = depth;
}

void Worker::HoldFoldedLocked(const TaskSpec& spec, const WorkerSession& lease_worker) {
  if (!fold_mode_) {
    // From now on the worker holds fold_depth_ tasks per slot and leases
    // them in batches (PollMinLocked); the lease depth's pushes are gone.
    fold_mode_ = true;
    fold_depth_ = lease_depth_.depth();  // what each slot holds until now
    FollowFoldDepthLocked();
  }
  std::shared_ptr<FoldBatch>& batch = folds_[{spec.fold_group, lease_worker.worker_id}];
  if (batch == nullptr) {
    batch = std::make_shared<FoldBatch>();
    batch->group = spec.fold_group;
    batch->session = lease_worker;
  }
  ++batch->held;
}

void Worker::FoldTask(const TaskSpec& spec, const WorkerSession& lease_worker, absl::Status status,
                      std::shared_ptr<const TaskResult> result) {
  const std::pair<uint64_t, uint64_t> key(spec.fold_group, lease_worker.worker_id);
  std::shared_ptr<FoldBatch> batch;
  {
    absl::MutexLock lock(&mu_);
    batch = folds_.at(key);
  }
  bool folded = false;
  if (result != nullptr) {
    absl::Status added;
    {
      // Slots add in parallel; only the sum is shared.
      absl::MutexLock lock(&batch->sum_mu);
      if (batch->sum.empty() && !batch->in_slot.has_value() && batch->single == nullptr) {
        batch->single = result;  // the batch's first: it may stay alone
        batch->single_weight = spec.fold_weight;
      } else {
        if (batch->single != nullptr) {  // the second task: the sum starts with the first
          const std::span<const float> first = batch->single->delta;
          batch->in_slot = client_.LendSumSlot(first.size());
          if (batch->in_slot.has_value()) {
            added = ExactSum::AssignInto(batch->in_slot->values(), batch->single_weight, first);
          } else {
            batch->sum = ExactSum::FromValues(spare_sums_.TakeSized(first.size()));
            added = batch->sum.Assign(batch->single_weight, first);
          }
          if (!added.ok()) {
            added = absl::InvalidArgumentError(
                absl::StrCat("task ", batch->single->id, ": ", added.message()));
          }
          batch->single.reset();
        }
        if (added.ok()) {
          added = batch->in_slot.has_value()
                      ? ExactSum::AddInto(batch->in_slot->values(), spec.fold_weight, result->delta)
                      : batch->sum.Add(spec.fold_weight, result->delta);
        }
      }
    }
    if (added.ok()) {
      folded = true;
    } else {
      status = absl::InvalidArgumentError(absl::StrCat(
          "the update of task ", spec.id, " cannot be pre-aggregated: ", added.message()));
    }
  }
  TaskLog(spec,
          folded ? "trained, kept for its group's sum" : (status.ok() ? "dropped" : "failed"));
  std::shared_ptr<FoldBatch> ready;
  {
    absl::MutexLock lock(&mu_);
    if (!status.ok()) SetFatalLocked(status);
    if (folded) {
      TaskResult figures;  // the delta is in the sum
      figures.id = result->id;
      figures.client = result->client;
      figures.base = result->base;
      figures.num_examples = result->num_examples;
      figures.metrics = result->metrics;
      batch->tasks.push_back(std::move(figures));
    } else {
      ++tasks_dropped_;
      in_flight_.erase(spec.id);
    }
    // The slot's lease comes back now; the task stays in flight (the
    // heartbeat reports it) until its batch is pushed.
    ++free_slots_;
    if (--batch->held == 0) {
      auto it = folds_.find(key);
      if (it != folds_.end() && it->second == batch) folds_.erase(it);
      if (!batch->tasks.empty() && !stop_) ready = batch;
    }
  }
  if (ready != nullptr) pushers_->Schedule([this, ready] { PushBatch(ready); });
}

void Worker::PushBatch(const std::shared_ptr<FoldBatch>& batch) {
  std::shared_ptr<const TaskResult> single;
  {
    absl::MutexLock lock(&batch->sum_mu);
    single = std::move(batch->single);
  }
  if (single != nullptr) {  // one task: a plain update, half a sum's bytes
    TaskSpec spec;
    spec.id = single->id;
    spec.client = single->client;
    spec.base = single->base;
    bool done = false;
    bool duplicate = false;
    std::vector<wire::Task> next;  // none asked
    absl::Status pushed =
        Push(spec, batch->session, single, /*want_tasks=*/0, &done, &duplicate, &next);
    TaskLog(spec, done ? (duplicate ? "pushed (a duplicate)" : "pushed")
                       : (pushed.ok() ? "dropped" : "failed"));
    absl::MutexLock lock(&mu_);
    if (!pushed.ok()) SetFatalLocked(pushed);
    in_flight_.erase(spec.id);
    if (done) {
      ++tasks_done_;
      duplicates_ += duplicate;
    } else {
      ++tasks_dropped_;
    }
    return;
  }
  AggregatorClient::FoldedBatch out;
  out.group = batch->group;
  {
    absl::MutexLock lock(&mu_);
    out.fold_id = next_fold_id_++;
    out.tasks = std::move(batch->tasks);
  }
  {
    absl::MutexLock lock(&batch->sum_mu);
    out.sum = std::move(batch->sum);
    out.in_slot = std::exchange(batch->in_slot, std::nullopt);
  }
  std::sort(out.tasks.begin(), out.tasks.end(),
            [](const TaskResult& a, const TaskResult& b) { return a.id < b.id; });
  bool done = false;
  bool duplicate = false;
  absl::Status status = absl::OkStatus();
  while (!Stopped()) {
    // No tasks asked with the answer: the poller leases in batches.
    absl::StatusOr<AggregatorClient::Pushed> pushed = client_.PushFolded(batch->session, out, 0);
    if (pushed.ok()) {
      MarkContact();
      done = true;
      duplicate = pushed->duplicate;
      break;
    }
    const absl::Status& s = pushed.status();
    if (IsTransient(s)) {
      if (!HandleTransient(s, "PushFolded")) break;
      continue;
    }
    if (absl::IsFailedPrecondition(s) || absl::IsNotFound(s)) {
      Warn(absl::StrCat("the sum of ", out.tasks.size(), " tasks (", out.tasks.front().id, "..",
                        out.tasks.back().id, ") was not taken: ", s.message()));
      break;
    }
    status = absl::Status(s.code(), absl::StrCat("server refused the sum of ", out.tasks.size(),
                                                 " tasks: ", s.message()));
    break;
  }
  if (options_.task_log != nullptr) {
    const std::string what = done ? absl::StrCat("pushed in a sum of ", out.tasks.size(), " tasks",
                                                 duplicate ? " (a duplicate)" : "")
                                  : (status.ok() ? "dropped" : "failed");
    for (const TaskResult& r : out.tasks) {
      TaskSpec spec;
      spec.id = r.id;
      spec.client = r.client;
      spec.base = r.base;
      TaskLog(spec, what.c_str());
    }
  }
  if (!out.sum.empty()) spare_sums_.Give(std::move(out.sum).TakeValues());
  out.in_slot.reset();  // the slot back for the next batch
  absl::MutexLock lock(&mu_);
  if (!status.ok()) SetFatalLocked(status);
  for (const TaskResult& r : out.tasks) in_flight_.erase(r.id);
  if (done) {
    tasks_done_ += out.tasks.size();
    tasks_folded_ += out.tasks.size();
    sums_pushed_ += 1;
    duplicates_ += duplicate ? out.tasks.size() : 0;
  } else {
    tasks_dropped_ += out.tasks.size();
  }
}

absl::Status Worker::Train(const TaskSpec& spec, const WorkerSession& lease_worker,
                           const std::string& peer_backup, std::shared_ptr<const TaskResult>* out) {
  absl::StatusOr<ModelCache::Params> base;
  // A client model this worker holds (peer-to-peer decentralized runs):
  // trained from here, and y = x + delta stays here.
  PeerNode::Params held;
  if (peer_ != nullptr && !spec.base.is_global()) {
    held = peer_->Held(spec.base.client, spec.base.version);
  }
  if (held != nullptr) base = held;
  while (held == nullptr) {
    base = cache_.Get(spec.base);
    if (base.ok() || !IsTransient(base.status())) break;
    if (!HandleTransient(base.status(), "FetchModel")) return absl::OkStatus();
  }
  if (!base.ok()) {
    if (absl::IsNotFound(base.status())) {  // released: the engine no longer needs it
      Warn(absl::StrCat("task ", spec.id, " dropped: ", base.status().message()));
      return absl::OkStatus();
    }
    if (absl::IsFailedPrecondition(base.status())) {  // the server forgot this session
      Warn(absl::StrCat("task ", spec.id, " dropped: ", base.status().message()));
      Reregister(lease_worker.worker_id);
      return absl::OkStatus();
    }
    return base.status();
  }
  absl::StatusOr<TaskResult> result = runner_->Run(spec, **base);
  base = ModelCache::Params();  // let the cache alone decide what stays in memory
  if (!result.ok()) return result.status();
  if (held != nullptr && spec.kind == TaskKind::kTrain) {
    // y = x + delta in float, as the in-process rule computes it.
    std::vector<float>& delta = result->delta;
    for (size_t j = 0; j < delta.size() && j < held->size(); ++j) delta[j] += (*held)[j];
    auto y = std::make_shared<const std::vector<float>>(std::move(delta));
    peer_->KeepTrained(spec.client, spec.base.version, y);
    result->delta.clear();  // the server gets the figures only
    // A copy on the backup's worker, before the server counts y as there:
    // it outlives this worker. Without it y is lost with this worker, and
    // the round mixes without it (server/peer_models.h).
    if (!peer_backup.empty()) {
      absl::Status copied = peer_->Replicate(peer_backup, spec.client, spec.base.version, *y);
      if (!copied.ok()) {
        Warn(absl::StrCat("task ", spec.id, ": no copy of client ", spec.client,
                          "'s trained model on its backup worker: ", copied.message()));
      }
    }
  }

  if (time_scale_ > 0 && spec.duration_s > 0) {
    const absl::Time wake = clock_->Now() + absl::Seconds(spec.duration_s * time_scale_);
    absl::MutexLock lock(&mu_);
    clock_->AwaitWithDeadline(&mu_, absl::Condition(&stop_), wake);
  }
  // Shared with gRPC: a streamed push sends the delta without copying it.
  *out = std::make_shared<const TaskResult>(*std::move(result));
  return absl::OkStatus();
}

absl::Status Worker::Push(const TaskSpec& spec, const WorkerSession& lease_worker,
                          const std::shared_ptr<const TaskResult>& shared, uint32_t want_tasks,
                          bool* done, bool* duplicate, std::vector<wire::Task>* next) {
  while (true) {
    if (Stopped()) return absl::OkStatus();
    // A task's own push asks for the slot's next task with the answer: no
    // GetTask round trip.
    absl::StatusOr<AggregatorClient::Pushed> pushed =
        client_.PushUpdateAndLease(lease_worker, shared, want_tasks);
    if (pushed.ok()) {
      MarkContact();
      *done = true;
      *duplicate = pushed->duplicate;
      *next = std::move(pushed->tasks);
      return absl::OkStatus();
    }
    const absl::Status& s = pushed.status();
    if (IsTransient(s)) {
      if (!HandleTransient(s, "PushUpdate")) return absl::OkStatus();
      continue;
    }
    if (absl::IsFailedPrecondition(s) || absl::IsNotFound(s)) {
      Warn(absl::StrCat("result of task ", spec.id, " not taken: ", s.message()));
      return absl::OkStatus();
    }
    // InvalidArgument / AlreadyExists: this build computed something the
    // server cannot accept; a silent skip would hide a real bug.
    return absl::Status(
        s.code(), absl::StrCat("server refused the result of task ", spec.id, ": ", s.message()));
  }
}

absl::StatusOr<std::vector<float>> Worker::Fetch(const ModelRef& ref) {
  WorkerSession id;
  {
    absl::MutexLock lock(&mu_);
    id = session_;
  }
  absl::StatusOr<std::vector<float>> params = client_.FetchModel(id, ref);
  if (params.ok()) MarkContact();
  return params;
}

}  // namespace worker_internal
}  // namespace fedsim
