// GrpcTransportImpl's bookkeeping of workers and tasks: sessions, leases
// and their deadlines, dropping silent workers, re-queueing, the reaper,
// parked long polls and their timer, and the checks an update's header must
// pass. See server/grpc_transport.h.
#include <algorithm>
#include <cmath>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "rpc/auth.h"
#include "rpc/wire.h"
#include "server/grpc_transport_impl.h"

namespace fedsim {
namespace grpc_transport_internal {

bool GrpcTransportImpl::SeenLocked(uint64_t worker_id, const std::string& session, bool live_only) {
  auto w = workers_.find(worker_id);
  const bool known = w != workers_.end() && ConstantTimeEquals(w->second.session, session);
  if (known) {
    w->second.last_seen = clock_->Now();
  } else if (live_only) {
    NoteUnknownSessionLocked(worker_id);
  }
  DropSilentWorkersLocked();
  ExpireLeasesLocked();
  return known;
}

bool GrpcTransportImpl::HeldSessionLocked(uint64_t worker_id, const std::string& session) const {
  auto w = workers_.find(worker_id);
  if (w != workers_.end()) return ConstantTimeEquals(w->second.session, session);
  auto r = dropped_sessions_.find(worker_id);
  return r != dropped_sessions_.end() && ConstantTimeEquals(r->second, session);
}

void GrpcTransportImpl::NoteUnknownSessionLocked(uint64_t worker_id) {
  const uint64_t count = ++stats_.unknown_sessions;
  // A wrong session for a live worker id is someone else using its id.
  if (workers_.count(worker_id) != 0 && (count <= 10 || count % 1000 == 0)) {
    Log(absl::StrCat("refused a call as worker ", worker_id,
                     " with another session (impersonation?; ", count,
                     " unknown-session calls so far)"));
  }
}

absl::Status GrpcTransportImpl::UseServerExamplesLocked(DecodedUpdate* update) {
  TaskResult& result = update->result;
  if (result.client >= client_examples_.size()) {
    return absl::InvalidArgumentError(
        absl::StrCat("update for task ", result.id, ": the server has no example count for client ",
                     result.client, " (it knows ", client_examples_.size(), " clients)"));
  }
  const uint64_t n = client_examples_[result.client];
  if (result.num_examples != n) {
    const uint64_t count = ++stats_.num_examples_ignored;
    if (count <= 10 || count % 1000 == 0) {
      Log(absl::StrCat("worker ", update->worker, " said client ", result.client, " has ",
                       result.num_examples, " examples; the server's n_i is ", n,
                       ", which is used (", count, " such updates so far)"));
    }
    result.num_examples = n;
  }
  return absl::OkStatus();
}

void GrpcTransportImpl::WithdrawLocked(TaskId id, TaskState* task) {
  if (task->queued) {
    pending_.erase(std::find(pending_.begin(), pending_.end(), id));
    task->queued = false;
  }
  auto w = workers_.find(task->holder);
  if (w != workers_.end()) w->second.leased.erase(id);
}

void GrpcTransportImpl::LeaseLocked(uint64_t worker_id, WorkerState* worker, uint32_t max_tasks,
                                    wire::GetTaskResponse* response) {
  // Workers that pre-aggregate ask for many tasks at once; near the end of
  // a round that would leave one worker with a queue while another idles.
  // So a fold group's tasks are shared out by the work left: each worker
  // gets up to an equal part of the group's queued tasks plus those leased
  // and not yet trained, less its own untrained ones, and at least one. A
  // worker that does not report its untrained tasks (GetTaskRequest) counts
  // every task of the group it holds. Counting the trained ones too would
  // give a faster worker, which has trained more of the group, fewer tasks.
  uint32_t group_leased = 0;  // fold tasks leased by this call
  if (!pending_.empty() && tasks_.at(pending_.front()).spec.fold_group != 0) {
    const uint64_t group = tasks_.at(pending_.front()).spec.fold_group;
    size_t left = pending_.size();
    size_t mine = 0;
    for (const auto& [id, w] : workers_) {
      size_t held = 0;
      for (TaskId t : w.leased) held += tasks_.at(t).spec.fold_group == group;
      const size_t untrained =
          w.untrained.has_value() ? std::min<size_t>(*w.untrained, held) : held;
      left += untrained;
      if (id == worker_id) mine = untrained;
    }
    const size_t n = std::max<size_t>(workers_.size(), 1);
    const size_t fair = (left + n - 1) / n;
    const size_t share = fair > mine ? fair - mine : 1;
    max_tasks = std::min<uint32_t>(max_tasks, static_cast<uint32_t>(share));
  }
  for (auto it = pending_.begin();
       response->tasks_size() < static_cast<int>(max_tasks) && it != pending_.end();) {
    TaskId id = *it;
    TaskState& task = tasks_.at(id);
    if (!MayTrainLocked(*worker, task.spec.client)) {
      ++it;
      continue;
    }
    it = pending_.erase(it);
    task.queued = false;
    task.holder = worker_id;
    task.leased_at = clock_->Now();
    task.deadline = LeaseDeadlineLocked(task);
    next_lease_deadline_ = std::min(next_lease_deadline_, task.deadline);
    if (task.deadline < reaper_wakes_at_) ++reaper_events_;  // else it wakes in time
    if (std::find(task.lessees.begin(), task.lessees.end(), worker_id) == task.lessees.end()) {
      task.lessees.push_back(worker_id);
    }
    worker->leased.insert(id);
    group_leased += task.spec.fold_group != 0;
    wire::Task* leased = response->add_tasks();
    TaskToWire(task.spec, leased);
    leased->set_peer_backup(PeerBackupLocked(task.spec));
  }
  if (worker->untrained.has_value()) *worker->untrained += group_leased;
}

absl::Status GrpcTransportImpl::CheckLeaseLocked(uint64_t worker, const std::string& session,
                                                 TaskId id) {
  if (!HeldSessionLocked(worker, session)) {
    NoteUnknownSessionLocked(worker);
    return UnknownWorker(worker);
  }
  auto it = tasks_.find(id);
  if (it == tasks_.end()) return absl::NotFoundError(absl::StrCat("update for unknown task ", id));
  const TaskState& task = it->second;
  if (std::find(task.lessees.begin(), task.lessees.end(), worker) == task.lessees.end()) {
    return absl::FailedPreconditionError(
        absl::StrCat("task ", id, " is not leased to worker ", worker,
                     task.holder != 0 ? absl::StrCat(" (it is leased to worker ", task.holder, ")")
                                      : std::string(" (it is not leased)")));
  }
  return absl::OkStatus();
}

absl::Status GrpcTransportImpl::CheckHeaderLocked(const DecodedUpdate& update) {
  const TaskResult& result = update.result;
  absl::Status lease = CheckLeaseLocked(update.worker, update.session, result.id);
  if (!lease.ok()) return lease;
  const TaskState& task = tasks_.at(result.id);
  if (result.client != task.spec.client || result.base != task.spec.base) {
    return absl::InvalidArgumentError(
        absl::StrCat("update for task ", result.id, " names client ", result.client,
                     " and base model ", result.base.ToString(), ", the task has client ",
                     task.spec.client, " and base model ", task.spec.base.ToString()));
  }
  return absl::OkStatus();
}

absl::Status GrpcTransportImpl::CommitUpdate(DecodedUpdate update,
                                             wire::PushUpdateResponse* response) {
  absl::MutexLock lock(&mu_);
  // Re-check: the lease may have changed while the bulk was arriving.
  absl::Status status = CheckHeaderLocked(update);
  if (!status.ok()) return status;
  const TaskId id = update.result.id;
  TaskState& task = tasks_.at(id);
  if (task.received) {
    // A result that came in a pre-aggregated sum has no fingerprint of its
    // own to compare; a task's result is a pure function of its spec.
    if (!task.folded && task.fingerprint != update.fingerprint) {
      return absl::AlreadyExistsError(
          absl::StrCat("task ", id, " already has a result and this one differs from it"));
    }
    ++stats_.duplicates;
    response->set_duplicate(true);
    return absl::OkStatus();
  }
  task.received = true;
  task.fingerprint = update.fingerprint;
  if (task.holder == update.worker) {
    lease_seconds_sum_ += absl::ToDoubleSeconds(clock_->Now() - task.leased_at);
    ++leases_completed_;
  }
  if (task.cancelled) {
    ++stats_.discarded;
    return absl::OkStatus();
  }
  // It may have been re-queued after a timeout, then the old worker made it.
  WithdrawLocked(id, &task);
  ++stats_.updates_accepted;
  inbox_.emplace(id, std::move(update.result));
  arrival_order_.push_back(id);
  ++result_events_;
  return absl::OkStatus();
}

absl::Status GrpcTransportImpl::WaitForResultLocked(absl::Time deadline) {
  if (options_.interrupt != nullptr) {
    // How often a waiting Await looks at the interrupt flag.
    constexpr absl::Duration kInterruptPoll = absl::Milliseconds(100);
    if (options_.interrupt->load()) return absl::CancelledError("interrupted");
    deadline = std::min(deadline, clock_->Now() + kInterruptPoll);
  }
  if (workers_.empty()) {
    absl::Time give_up = no_worker_since_ + absl::Seconds(options_.no_worker_timeout_s);
    if (clock_->Now() >= give_up) {
      return absl::UnavailableError(absl::StrCat(
          "no worker is connected to the server at ", address_, " (none for ",
          options_.no_worker_timeout_s, " s); start one with: fedsim client --server=", address_));
    }
    deadline = std::min(deadline, give_up);
  }
  const uint64_t seen = result_events_;
  auto changed = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return result_events_ != seen; };
  clock_->AwaitWithDeadline(&mu_, absl::Condition(&changed), deadline);
  return absl::OkStatus();
}

void GrpcTransportImpl::ReaperLoop() {
  {
    absl::MutexLock lock(&mu_);
    while (true) {
      DropSilentWorkersLocked();
      absl::Time deadline = absl::InfiniteFuture();
      if (shutdown_) {
        // Told: answered, and a poll's answer handed to gRPC (the server's
        // shutdown below cancels what it has not sent within 200 ms).
        const bool all_told = std::all_of(workers_.begin(), workers_.end(),
                                          [](const auto& w) { return w.second.told_finished; }) &&
                              answered_.empty() && polls_finishing_ == 0;
        const absl::Time linger_end = shutdown_at_ + absl::Seconds(options_.end_linger_s);
        const absl::Time grace_end = linger_end + absl::Seconds(options_.shutdown_grace_s);
        const absl::Time now = clock_->Now();
        if ((all_told && now >= linger_end) || now >= grace_end) break;
        deadline = all_told ? linger_end : grace_end;
      } else {
        ExpireLeasesLocked();
        for (const auto& [id, w] : workers_) deadline = std::min(deadline, w.last_seen + timeout_);
        deadline = std::min(deadline, next_lease_deadline_);
      }
      const uint64_t seen = reaper_events_;
      auto changed = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return reaper_events_ != seen; };
      reaper_wakes_at_ = deadline;
      clock_->AwaitWithDeadline(&mu_, absl::Condition(&changed), deadline);
      reaper_wakes_at_ = absl::InfinitePast();
    }
  }
  // Ends in-flight RPCs (long polls already returned run_finished).
  if (server_ != nullptr) server_->Shutdown(GrpcTimeout(absl::Milliseconds(200)));
}

void GrpcTransportImpl::ServePollsLocked(bool all) {
  for (auto it = parked_.begin(); it != parked_.end() && (all || !pending_.empty());) {
    PollCall* call = it->second;
    ++it;
    if (AnswerPollLocked(call)) UnparkAnsweredLocked(call);
  }
}

void GrpcTransportImpl::UnparkAnsweredLocked(PollCall* call) {
  parked_.erase(call->key);
  poll_deadlines_.erase({call->deadline, call->key});
  answered_.push_back(call);
  ++poll_events_;
}

void GrpcTransportImpl::PollTimerLoop() {
  while (true) {
    std::vector<PollCall*> finish;
    {
      absl::MutexLock lock(&mu_);
      while (answered_.empty() && !poll_timer_stop_) {
        // Those whose deadline passed (answered with what there is).
        const absl::Time now = clock_->Now();
        while (!poll_deadlines_.empty() && poll_deadlines_.begin()->first <= now) {
          PollCall* call = parked_.at(poll_deadlines_.begin()->second);
          if (!AnswerPollLocked(call)) break;  // cannot happen: its deadline passed
          UnparkAnsweredLocked(call);
        }
        if (!answered_.empty()) break;
        const absl::Time next =
            poll_deadlines_.empty() ? absl::InfiniteFuture() : poll_deadlines_.begin()->first;
        const uint64_t seen = poll_events_;
        auto changed = [&]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) { return poll_events_ != seen; };
        clock_->AwaitWithDeadline(&mu_, absl::Condition(&changed), next);
      }
      if (answered_.empty()) return;  // stopped, and nothing left to finish
      finish.swap(answered_);
      polls_finishing_ = finish.size();
    }
    // Outside mu_: Finish may run the call's completion (OnDone) inline.
    for (PollCall* call : finish) call->Answer(call->answer);
    absl::MutexLock lock(&mu_);
    polls_finishing_ = 0;
    if (shutdown_) ++reaper_events_;  // after Shutdown, the reaper waits for these answers
  }
}

void GrpcTransportImpl::DropSilentWorkersLocked() {
  if (shutdown_) return;  // the run is over: nothing left to re-run
  const absl::Time now = clock_->Now();
  std::vector<std::pair<uint64_t, absl::Duration>> silent;
  for (const auto& [id, worker] : workers_) {
    // One told to exit (ReleaseWorkers) has nothing left to say.
    if (worker.told_finished) continue;
    if (now - worker.last_seen >= timeout_) silent.emplace_back(id, now - worker.last_seen);
  }
  std::sort(silent.begin(), silent.end());
  for (const auto& [id, quiet] : silent) {
    DropWorkerLocked(id, absl::StrCat("silent for ", absl::FormatDuration(quiet)));
  }
}

void GrpcTransportImpl::DropWorkerLocked(uint64_t id, const std::string& why) {
  auto it = workers_.find(id);
  if (it == workers_.end() || shutdown_) return;
  std::vector<TaskId> given_back;
  for (TaskId t : it->second.leased) {
    TaskState& task = tasks_.at(t);
    if (task.received || task.cancelled || task.holder != id) continue;
    task.holder = 0;
    given_back.push_back(t);
  }
  std::sort(given_back.begin(), given_back.end());
  Log(absl::StrCat("worker ", id, " (", it->second.name, ") ", why, ": dropped; ",
                   given_back.empty() ? std::string("it held no task")
                                      : absl::StrCat("requeued ", given_back.size(), " task(s): ",
                                                     absl::StrJoin(given_back, ", "))));
  dropped_sessions_[id] = it->second.session;
  ReleaseClientsLocked(id, it->second);
  workers_.erase(it);
  ReassignHomesLocked(id);
  ++stats_.workers_dropped;
  if (workers_.empty()) no_worker_since_ = clock_->Now();  // Await's no-worker clock starts
  ++result_events_;
  RequeueFrontLocked(std::move(given_back));
  ServePollsLocked(/*all=*/true);  // the dropped worker's polls, and the requeued tasks
}

void GrpcTransportImpl::RequeueFrontLocked(std::vector<TaskId> requeue) {
  if (requeue.empty()) return;
  std::sort(requeue.begin(), requeue.end(),
            [this](TaskId a, TaskId b) { return tasks_.at(a).seq < tasks_.at(b).seq; });
  for (auto it = requeue.rbegin(); it != requeue.rend(); ++it) {
    pending_.push_front(*it);
    tasks_.at(*it).queued = true;
    NoteWaitingClientLocked(tasks_.at(*it).spec);
  }
  stats_.tasks_requeued += requeue.size();
  ++result_events_;
  ServePollsLocked(/*all=*/false);  // parked long polls lease them
}

absl::Time GrpcTransportImpl::LeaseDeadlineLocked(const TaskState& task) const {
  if (!(options_.task_deadline_slack_s > 0)) return absl::InfiniteFuture();
  double expected = task.spec.duration_s * facts_.wall_time_scale;
  if (leases_completed_ > 0) {
    expected = std::max(expected, lease_seconds_sum_ / static_cast<double>(leases_completed_));
  }
  const double budget =
      (options_.task_deadline_slack_s + options_.task_deadline_factor * expected) *
      std::ldexp(1.0, std::min(task.expiries, 10));
  return task.leased_at + absl::Seconds(budget);
}

void GrpcTransportImpl::ExpireLeasesLocked() {
  const absl::Time now = clock_->Now();
  if (shutdown_ || now < next_lease_deadline_) return;
  next_lease_deadline_ = absl::InfiniteFuture();
  std::vector<TaskId> requeue;
  for (auto& [worker_id, worker] : workers_) {
    for (auto it = worker.leased.begin(); it != worker.leased.end();) {
      TaskState& task = tasks_.at(*it);
      if (task.received || task.cancelled || task.holder != worker_id || now < task.deadline) {
        if (!task.received && !task.cancelled && task.holder == worker_id) {
          next_lease_deadline_ = std::min(next_lease_deadline_, task.deadline);
        }
        ++it;
        continue;
      }
      Log(absl::StrCat("task ", *it, " leased to worker ", worker_id, " (", worker.name,
                       ") got no result within ",
                       absl::FormatDuration(task.deadline - task.leased_at), ": re-dispatched"));
      task.holder = 0;
      ++task.expiries;
      ++stats_.leases_expired;
      requeue.push_back(*it);
      it = worker.leased.erase(it);
    }
  }
  RequeueFrontLocked(std::move(requeue));
}

}  // namespace grpc_transport_internal
}  // namespace fedsim
