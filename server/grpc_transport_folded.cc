// PushFolded on the transport's side: a worker's exact sum of several tasks'
// weighted deltas (core/task.h FoldedSum) becomes one result per task, all
// sharing the sum. See GrpcTransportImpl::CheckFoldedHeader / EndFolded.
#include <cmath>
#include <cstring>
#include <memory>
#include <span>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "rpc/wire.h"
#include "server/grpc_transport_impl.h"

namespace fedsim {
namespace grpc_transport_internal {

absl::Status FoldedSumReader::Take(wire::FoldedChunk* chunk) {
  if (!have_header_) {
    if (!chunk->has_header()) {
      return absl::FailedPreconditionError("the first chunk of a PushFolded has no header");
    }
    header_ = std::move(*chunk->mutable_header());
    have_header_ = true;
    if (absl::Status s = transport_->CheckFoldedHeader(header_); !s.ok()) return s;
    if (header_.shm_slot() > 0) {  // the values are in shared memory, not in the stream
      if (absl::Status s = transport_->HoldFoldedSlot(header_, &held_); !s.ok()) return s;
      received_ = header_.num_params();
    } else {
      values_ = transport_->SpareSumValuesSized();  // every value is written below (Finish)
    }
  } else if (chunk->has_header()) {
    return absl::InvalidArgumentError("a PushFolded stream carries its header twice");
  }
  const std::string& data = chunk->data();
  if (data.empty()) return absl::OkStatus();  // a header alone
  if (held_ != nullptr) {
    return absl::InvalidArgumentError("a PushFolded stream names a slot and carries values too");
  }
  bytes_ += data.size();
  const size_t n = data.size() / sizeof(int64_t);
  if (data.size() % sizeof(int64_t) != 0 || chunk->offset() != received_ ||
      n > values_.size() - received_) {
    return absl::InvalidArgumentError(absl::StrCat(
        "pre-aggregated sum: a chunk of ", data.size(), " bytes at value ", chunk->offset(),
        " does not continue the ", received_, " of ", values_.size(), " values received"));
  }
  if (n > 0) std::memcpy(values_.data() + received_, data.data(), n * sizeof(int64_t));
  received_ += n;
  return absl::OkStatus();
}

absl::Status FoldedSumReader::Finish() const {
  const uint64_t want = held_ != nullptr ? header_.num_params() : values_.size();
  if (have_header_ && received_ == want) return absl::OkStatus();
  return absl::InvalidArgumentError(absl::StrCat("pre-aggregated sum ended after ", received_,
                                                 " of ", have_header_ ? want : 0, " values",
                                                 have_header_ ? "" : " (no header)"));
}

absl::Status FoldedSumReader::End(absl::Status status, wire::PushUpdateResponse* response) {
  return transport_->EndFolded(std::move(status), header_, std::move(values_), std::move(held_),
                               bytes_, response);
}

absl::Status GrpcTransportImpl::CheckFoldedHeader(const wire::FoldedHeader& header) {
  absl::MutexLock lock(&mu_);
  SeenLocked(header.worker_id(), header.session(), /*live_only=*/false);
  return CheckFoldedLocked(header);
}

absl::Status GrpcTransportImpl::HoldFoldedSlot(const wire::FoldedHeader& header,
                                               std::shared_ptr<HeldSlot>* held) {
  std::shared_ptr<const MappedUpdateSegment> segment;
  {
    absl::MutexLock lock(&mu_);
    // Slots of num_params int64 values (2 * num_params floats' bytes) and
    // the hold word; read-write, to clear that word.
    absl::StatusOr<std::shared_ptr<const MappedUpdateSegment>> mapped = WorkerSegmentLocked(
        header.worker_id(), &WorkerState::sum_segment, header.shm_segment(),
        2 * num_params_ + kHoldWordFloats, MappedUpdateSegment::Access::kReadWrite, "sums");
    if (!mapped.ok()) return mapped.status();
    segment = *std::move(mapped);
  }
  if (header.shm_slot() > segment->slots()) {
    return absl::InvalidArgumentError(absl::StrCat("pre-aggregated sum ", header.fold_id(),
                                                   " names slot ", header.shm_slot(), " of ",
                                                   segment->slots()));
  }
  *held = std::make_shared<HeldSlot>(std::move(segment), header.shm_slot());
  return absl::OkStatus();
}

absl::Status GrpcTransportImpl::CheckFoldedLocked(const wire::FoldedHeader& header) {
  const uint64_t worker = header.worker_id();
  if (header.fold_id() == 0 || header.group() == 0) {
    return absl::InvalidArgumentError("a pre-aggregated sum needs a nonzero fold_id and group");
  }
  if (header.num_params() != num_params_) {
    return absl::InvalidArgumentError(absl::StrCat("pre-aggregated sum ", header.fold_id(), " has ",
                                                   header.num_params(), " values; the model has ",
                                                   num_params_));
  }
  if (header.tasks_size() == 0 || header.tasks_size() > kMaxFoldedTasks) {
    return absl::InvalidArgumentError(absl::StrCat("pre-aggregated sum ", header.fold_id(),
                                                   " names ", header.tasks_size(),
                                                   " tasks; between 1 and ", kMaxFoldedTasks));
  }
  TaskId previous = 0;
  for (const wire::FoldedTask& t : header.tasks()) {
    const TaskId id = t.task_id();
    if (id <= previous) {
      return absl::InvalidArgumentError(absl::StrCat("pre-aggregated sum ", header.fold_id(),
                                                     ": task ids must ascend (", id, " after ",
                                                     previous, ")"));
    }
    previous = id;
    absl::Status lease = CheckLeaseLocked(worker, header.session(), id);
    if (!lease.ok()) return lease;
    const TaskSpec& spec = tasks_.at(id).spec;
    absl::StatusOr<ModelRef> base = ModelRefFromWire(t.base());
    if (spec.fold_group != header.group() || spec.kind != TaskKind::kTrain || !base.ok() ||
        t.client_id() != spec.client || *base != spec.base) {
      return absl::InvalidArgumentError(absl::StrCat(
          "pre-aggregated sum ", header.fold_id(), ": task ", id, " is not client ", t.client_id(),
          "'s training from ", base.ok() ? base->ToString() : "?", " in group ", header.group(),
          " (it is client ", spec.client, "'s from ", spec.base.ToString(),
          spec.fold_group != 0 ? absl::StrCat(" in group ", spec.fold_group)
                               : std::string(", not to be pre-aggregated"),
          ")"));
    }
    if (t.metrics_size() > kMaxUpdateMetrics) {
      return absl::InvalidArgumentError(absl::StrCat("task ", id, " has ", t.metrics_size(),
                                                     " metrics; at most ", kMaxUpdateMetrics));
    }
    for (const auto& [name, value] : t.metrics()) {
      if (!std::isfinite(value)) {
        return absl::InvalidArgumentError(
            absl::StrCat("task ", id, ": metric ", name, " is not finite"));
      }
    }
    if (t.client_id() >= client_examples_.size()) {
      return absl::InvalidArgumentError(absl::StrCat("task ", id, ": the server has no example ",
                                                     "count for client ", t.client_id()));
    }
  }
  return absl::OkStatus();
}

absl::Status GrpcTransportImpl::EndFolded(absl::Status status, const wire::FoldedHeader& header,
                                          std::vector<int64_t> values,
                                          std::shared_ptr<HeldSlot> held, uint64_t bytes,
                                          wire::PushUpdateResponse* response) {
  absl::MutexLock lock(&mu_);
  // Re-checked: a lease may have changed while the sum was arriving.
  if (status.ok()) status = CheckFoldedLocked(header);
  if (status.ok()) {
    status = CommitFoldedLocked(header, ExactSum::FromValues(std::move(values)), std::move(held),
                                response);
  }
  stats_.bytes_received += bytes;
  if (!status.ok()) ++stats_.rejected;
  if (status.ok()) {
    LeaseWithAnswerLocked(header.worker_id(), header.session(), header.want_tasks(), response);
  }
  return status;
}

absl::Status GrpcTransportImpl::CommitFoldedLocked(const wire::FoldedHeader& header, ExactSum sum,
                                                   std::shared_ptr<HeldSlot> held,
                                                   wire::PushUpdateResponse* response) {
  const uint64_t worker = header.worker_id();
  // The sum's own name, kept in each task's fingerprint: a resend of the
  // same sum (its answer was lost) is a duplicate, not an overlap.
  const uint64_t key = (worker << 40) ^ header.fold_id();
  size_t taken = 0;       // tasks with a result already
  size_t taken_here = 0;  // of those, by this very sum
  size_t cancelled = 0;
  for (const wire::FoldedTask& t : header.tasks()) {
    const TaskState& task = tasks_.at(t.task_id());
    if (task.received) {
      ++taken;
      taken_here += task.folded && task.fingerprint == key;
    } else if (task.cancelled) {
      ++cancelled;
    }
  }
  const size_t n = static_cast<size_t>(header.tasks_size());
  if (taken_here == n) {
    ++stats_.duplicates;
    response->set_duplicate(true);
    return absl::OkStatus();
  }
  if (taken > 0 || cancelled > 0) {
    // The sum cannot be split: its other tasks are trained again.
    std::vector<TaskId> requeue;
    for (const wire::FoldedTask& t : header.tasks()) {
      TaskState& task = tasks_.at(t.task_id());
      if (task.received || task.cancelled || task.queued || task.holder != worker) continue;
      WithdrawLocked(t.task_id(), &task);
      task.holder = 0;
      task.deadline = absl::InfiniteFuture();
      requeue.push_back(t.task_id());
    }
    ++stats_.folded_overlaps;
    Log(absl::StrCat("worker ", worker, "'s pre-aggregated sum of ", n,
                     " tasks is refused: ", taken, " of them have a result already",
                     cancelled > 0 ? " or were cancelled" : "", "; ", requeue.size(),
                     " go back to the queue"));
    RequeueFrontLocked(std::move(requeue));
    return absl::FailedPreconditionError(absl::StrCat("pre-aggregated sum ", header.fold_id(),
                                                      " overlaps results the server has ",
                                                      "already; its tasks are trained again"));
  }
  std::shared_ptr<FoldedSum> folded;
  if (held != nullptr) {
    // Read in place: the worker's slot stays held until the last result
    // sharing the sum is gone (the engine has merged it).
    const std::span<const int64_t> values = held->As<int64_t>(num_params_);
    folded =
        std::shared_ptr<FoldedSum>(new FoldedSum, [held = std::move(held)](FoldedSum* f) mutable {
          delete f;
          held.reset();  // clears the word: the slot goes back
        });
    folded->borrowed = values;
  } else {
    folded = NewRecycledFoldedSum(spare_sums_);
    folded->sum = std::move(sum);
  }
  folded->id = next_folded_id_++;
  folded->group = header.group();
  for (const wire::FoldedTask& t : header.tasks()) folded->tasks.push_back(t.task_id());
  std::shared_ptr<const FoldedSum> shared = std::move(folded);
  const absl::Time now = clock_->Now();
  for (const wire::FoldedTask& t : header.tasks()) {
    const TaskId id = t.task_id();
    TaskState& task = tasks_.at(id);
    task.received = true;
    task.folded = true;
    task.fingerprint = key;
    if (task.holder == worker) {
      lease_seconds_sum_ += absl::ToDoubleSeconds(now - task.leased_at);
      ++leases_completed_;
    }
    WithdrawLocked(id, &task);
    ++stats_.updates_accepted;
    TaskResult result;
    result.id = id;
    result.client = task.spec.client;
    result.base = task.spec.base;
    // The server's own n_i, as for every update (UseServerExamplesLocked).
    result.num_examples = client_examples_[task.spec.client];
    result.metrics.insert(t.metrics().begin(), t.metrics().end());
    result.folded = shared;
    inbox_.emplace(id, std::move(result));
    arrival_order_.push_back(id);
  }
  ++stats_.folded_sums;
  ++result_events_;
  return absl::OkStatus();
}

}  // namespace grpc_transport_internal
}  // namespace fedsim
