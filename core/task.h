// Tasks and their results: the unit of work the engine hands to a transport.
//
// Thread safety: plain values.
#ifndef FEDSIM_CORE_TASK_H_
#define FEDSIM_CORE_TASK_H_

#include <cstdint>
#include <map>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "core/exact_sum.h"
#include "core/model_ref.h"
#include "core/types.h"
#include "proto/scenario.pb.h"
#include "util/spare_buffers.h"

namespace fedsim {

// One unit of local work. Everything in it is a deterministic function of the
// scenario and the engine's state, so re-running a task (after a worker died)
// gives the identical result.
// What a task does: train (the default) or, for the federated evaluation of
// runs whose clients bring their own data, score `base` on the client's own
// test split and report only the figures below, with an empty delta.
enum class TaskKind { kTrain, kEvaluate };

// The figures of an evaluation task: summed cross-entropy, correct
// predictions and examples scored.
inline constexpr char kEvalLossSum[] = "eval_loss_sum";
inline constexpr char kEvalCorrect[] = "eval_correct";
inline constexpr char kEvalCount[] = "eval_count";

struct TaskSpec {
  TaskId id = 0;
  TaskKind kind = TaskKind::kTrain;
  ClientId client = 0;
  // The model to train from (the global model at some version, or the
  // client's own model for decentralized rules).
  ModelRef base;
  uint64_t seed = 0;  // batch order and any other local randomness
  // The scenario's local-training message, whole, with the rule's per-task
  // overrides applied: the one source of truth for how the task trains
  // (optimizer, per-batch transform, batch size, ...). Nobody copies it
  // field by field.
  config::LocalTraining local;
  double duration_s = 0;  // scripted duration (wall-clock emulation may sleep it)
  // Virtual time at which the engine will need the result: executors should
  // run the earliest-due tasks first so the engine waits as little as possible.
  double due = 0;
  // Worker pre-aggregation. Nonzero: every task of this group will be
  // accepted and only the weighted sum of their deltas matters (a FedAvg
  // round without deadline or over-selection), so an executor may add
  // fold_weight * delta to an exact sum (core/exact_sum.h) shared with other
  // tasks of the same group and report the sum once (TaskResult::folded).
  // The sum is exact, so the model is the same bits however tasks are
  // grouped. 0 (the default): the delta comes back on its own.
  uint64_t fold_group = 0;
  double fold_weight = 0;
};

// The pre-aggregated deltas of several tasks of one fold group:
// sum = sum over `tasks` of fold_weight_t * delta_t.
struct FoldedSum {
  uint64_t id = 0;  // unique per transport (for logs and duplicate checks)
  uint64_t group = 0;
  std::vector<TaskId> tasks;  // ascending
  // The sum: its values held here, or (with `sum` empty) in memory this
  // FoldedSum reads in place until it is destroyed, a worker's
  // shared-memory slot (the transport that made it keeps that memory until
  // then: server/grpc_transport_folded.cc).
  ExactSum sum;
  std::span<const int64_t> borrowed;

  // The sum's fixed-point values (ExactSum::values()), wherever they are.
  std::span<const int64_t> values() const { return sum.empty() ? borrowed : sum.values(); }
};

// An empty FoldedSum whose values' memory goes to `spare` when the last
// result sharing it is gone, for a transport's next sum. `spare` is shared
// because a FoldedSum may outlive the transport that made it.
inline std::shared_ptr<FoldedSum> NewRecycledFoldedSum(
    std::shared_ptr<SpareBuffers<int64_t>> spare) {
  return std::shared_ptr<FoldedSum>(new FoldedSum, [spare = std::move(spare)](FoldedSum* f) {
    spare->Give(std::move(f->sum).TakeValues());
    delete f;
  });
}

struct TaskResult {
  TaskId id = 0;
  ClientId client = 0;
  ModelRef base;
  uint64_t num_examples = 0;  // the client's n_i
  std::vector<float> delta;   // local - base; empty when `folded` is set
  // Named figures of the local work ("train_loss", "steps", ...).
  std::map<std::string, double> metrics;
  // Set when this task's delta came pre-aggregated (TaskSpec::fold_group):
  // the sum it is part of, shared by the results of all its tasks.
  std::shared_ptr<const FoldedSum> folded;
};

}  // namespace fedsim

#endif  // FEDSIM_CORE_TASK_H_
