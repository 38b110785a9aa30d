// How many tasks a worker holds per training slot.
//
// With one task per slot, a slot idles while its finished task's update is
// pushed: for the pfl recipe's 60-example tasks a push's round trip took a
// third as long as the training. Holding a second task lets the slot train
// it meanwhile. For long tasks that second task costs more than it saves: at
// the end of a round it can wait behind a long task while another worker is
// idle (the quickstart's 3,000-example tasks ran 10-20% slower). So a worker
// leases ahead only while its tasks train in less than kAheadRatio push round
// trips, comparing running means of both.
//
// A worker that pre-aggregates (client/worker_impl.h) pushes once per
// batch, not per task, and leases in batches instead: FoldDepth() tasks per
// slot, enough for about kFoldHoldSeconds of training and at least
// kFoldMin. Short tasks then need fewer GetTask calls per round (on the
// pfl recipe, 0.5 ms tasks, 32 per slot halve them against 8); long ones
// keep 8, so that a slow worker does not sit on a round's tasks.
//
// Only scheduling depends on it, never a result.
//
// Thread safety: none; the worker guards it with its mutex.
#ifndef FEDSIM_CLIENT_LEASE_DEPTH_H_
#define FEDSIM_CLIENT_LEASE_DEPTH_H_

#include <algorithm>
#include <cmath>

#include "absl/time/time.h"

namespace fedsim {

class LeaseDepth {
 public:
  static constexpr int kAhead = 2;  // tasks per slot when leasing ahead
  static constexpr double kAheadRatio = 8.0;
  static constexpr int kFoldMin = 8;
  static constexpr int kFoldMax = 32;
  static constexpr double kFoldHoldSeconds = 0.016;

  // Tasks per slot now: 1 until both a training and a push were timed.
  int depth() const { return depth_; }

  // Fold one task's training time (fetching its base model included) or
  // one push's round trip into its running mean; return the change in
  // depth() (-1, 0 or +1 task per slot).
  int NoteTrain(absl::Duration d) { return Note(&train_s_, d); }
  int NotePush(absl::Duration d) { return Note(&push_s_, d); }

  // Tasks per slot while pre-aggregating: kFoldHoldSeconds over the mean
  // training time, within [kFoldMin, kFoldMax]; kFoldMin until a training
  // was timed (and where the clock does not move).
  int FoldDepth() const {
    if (!(train_s_ > 0)) return kFoldMin;
    const double fit = std::ceil(kFoldHoldSeconds / train_s_);
    return fit >= kFoldMax ? kFoldMax : std::max(kFoldMin, static_cast<int>(fit));
  }

 private:
  int Note(double* mean_s, absl::Duration d) {
    const double x = absl::ToDoubleSeconds(d);
    *mean_s = *mean_s < 0 ? x : 0.8 * *mean_s + 0.2 * x;
    const int depth = push_s_ > 0 && train_s_ >= 0 && train_s_ < kAheadRatio * push_s_ ? kAhead : 1;
    const int change = depth - depth_;
    depth_ = depth;
    return change;
  }

  int depth_ = 1;
  double train_s_ = -1;  // running means in seconds; -1 = none yet
  double push_s_ = -1;
};

}  // namespace fedsim

#endif  // FEDSIM_CLIENT_LEASE_DEPTH_H_
