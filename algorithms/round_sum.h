// RoundSum: the weighted sum of a synchronous round's updates, folded as
// they arrive (FedAvg, FedOpt compose it).
//
// Each update is added to an exact fixed-point sum (core/exact_sum.h) with
// weight w_i = 1 (UNIFORM) or n_i / n_bar (EXAMPLES), n_bar the fleet's mean
// n_i, which keeps the terms near 1 inside the sum's range. The weights'
// total comes from exact counts, so sum / total is the paper's mean with
// n_i / sum n. Because the sum is exact, the round's result does not depend
// on the order the updates arrive in (a deployment whose updates race each
// other commits the simulation's model bit for bit), and the rule holds one
// model-sized sum instead of every update of the round.
//
// Pre-aggregated updates (ClientUpdate::folded, a FoldedSum of several tasks'
// weighted deltas made by a worker with the weights WeightOf gives): the
// first of its tasks to be added merges the whole sum; the others, added
// later, count their weight and record only. A checkpoint between the two
// keeps the tasks whose delta is in the sum but that were not added yet
// ("prefolded"): when such a task comes again after a resume (trained anew,
// its delta on its own), only its weight counts.
//
// Thread safety: not thread-safe; used from the engine thread.
#ifndef FEDSIM_ALGORITHMS_ROUND_SUM_H_
#define FEDSIM_ALGORITHMS_ROUND_SUM_H_

#include <cstdint>
#include <set>
#include <span>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "algorithms/algorithm.h"
#include "algorithms/types.h"
#include "core/exact_sum.h"

namespace fedsim {

class RoundSum {
 public:
  // `num_params` == 0: any size (fixed by the first update of a round).
  RoundSum(bool uniform, size_t num_params) : uniform_(uniform), num_params_(num_params) {}

  // Fixes the EXAMPLES weights' unit to the fleet's mean n_i (1 when the
  // fleet holds no examples). Call from Start; LoadState restores it.
  void SetUnitFromFleet(const FleetView& fleet);

  // The weight w_i of a client holding n_i = num_examples examples: what a
  // worker that pre-aggregates must multiply its delta by (Dispatch::fold_weight).
  double WeightOf(uint64_t num_examples) const { return Weight(num_examples); }

  // Folds one update (its delta, or its share of a pre-aggregated sum).
  // InvalidArgument, leaving the round unchanged, when its size is wrong, a
  // weighted value is not finite or too large for the sum (the message names
  // the task and the index), or a pre-aggregated sum does not name the task
  // or names one this round already holds.
  absl::Status Add(const ClientUpdate& update);

  // Tasks whose delta is in the sum through a pre-aggregated sum but that
  // were not added yet. A round is complete, ready to commit, only with none.
  size_t pending_folds() const { return prefolded_.size(); }
  // OK when pending_folds() is 0; else Internal naming `rule` (a bug in the
  // rule: it commits a round before all of its tasks were added).
  absl::Status CheckComplete(const char* rule) const;

  bool empty() const { return folded_.empty(); }
  size_t count() const { return folded_.size(); }

  // The weights' total; 0 when every folded update has n_i = 0 under
  // EXAMPLES (those clients trained on nothing: their deltas are zero).
  double total_weight() const;

  // model[j] += scale * sum[j] / total, in one rounding per element; nothing
  // when the total is 0. REQUIRES: !empty(), model.size() == the sum's size.
  void AddMeanTo(double scale, std::span<float> model) const;
  // out[j] = sum[j] / total (zeros when the total is 0). REQUIRES as above.
  void MeanInto(std::span<float> out) const;
  // The sum's size; meaningful only when !empty().
  size_t size() const { return sum_.size(); }

  // One record per folded update, in task-id (dispatch) order, with weight
  // scale * w_i / total.
  std::vector<AppliedUpdate> Applied(double scale) const;

  // Empties the round (the unit stays).
  void Clear();

  // Checkpoints: "<prefix>.weight_unit", "<prefix>.folded" (task, client,
  // staleness, n_i per update), the sum's halves "<prefix>.sum_high",
  // "<prefix>.sum_low", and the prefolded tasks "<prefix>.prefolded". Load
  // refuses, with InvalidArgument, missing or
  // malformed keys and the one-by-one updates older builds saved
  // ("<prefix>.accepted").
  void Save(AlgorithmState* out, const std::string& prefix) const;
  absl::Status Load(const AlgorithmState& in, const std::string& prefix);

 private:
  struct Folded {
    TaskId task_id = 0;
    ClientId client = 0;
    uint64_t staleness = 0;
    uint64_t num_examples = 0;
  };
  absl::Status Merge(const ClientUpdate& update);  // Add of a pre-aggregated update
  void Record(const ClientUpdate& update);
  double Weight(uint64_t num_examples) const {
    return uniform_ ? 1.0 : static_cast<double>(num_examples) / unit_;
  }

  bool uniform_;
  size_t num_params_;
  double unit_ = 1;             // the fleet's mean n_i
  std::vector<Folded> folded_;  // arrival order
  uint64_t examples_ = 0;       // sum of folded_'s n_i
  ExactSum sum_;                // sum of Weight(n_i) * delta_i; stale while folded_ is empty
  // In the sum through a merged FoldedSum, not added yet (see above).
  std::set<TaskId> prefolded_;
};

}  // namespace fedsim

#endif  // FEDSIM_ALGORITHMS_ROUND_SUM_H_
