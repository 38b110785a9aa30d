// The progress lines of `fedsim compare`: one line per arm with running
// runs, each run's share of its budget, the latest accuracy, and an ETA.
//
//   fedbuff          seed 1  62%  seed 2  40%  acc 0.781  ETA 2m10s
//
// A run's share is the larger of virtual time / stop.max_virtual_s and
// commits / stop.max_commits at its latest evaluation (a run that stops
// at a target accuracy finishes early). The ETA of an arm: its running runs'
// remaining wall time (elapsed x (1 - share) / share; the longest counts),
// plus its queued runs at the typical wall time of a run, shared among as
// many slots as the arm has running now. An estimate, nothing more.
//
// Thread safety: pure functions.
#ifndef FEDSIM_COMPARE_PROGRESS_H_
#define FEDSIM_COMPARE_PROGRESS_H_

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace fedsim {

struct RunProgress {
  enum class State { kQueued, kRunning, kDone, kFailed };
  State state = State::kQueued;
  uint64_t seed = 0;
  double share = 0;      // of the run's budget, in [0, 1] (running runs)
  double elapsed_s = 0;  // wall seconds since it started (running, done)
  double accuracy = -1;  // latest test accuracy; < 0 = none yet
};

// The share of a run's budget done at (virtual_time, version); 0 when the
// scenario has neither bound. Clamped to [0, 1].
double RunShare(double virtual_time, double version, double max_virtual_s, uint64_t max_commits);

// Seconds left for an arm's unfinished runs (see the file comment);
// `typical_run_s` <= 0 means unknown. nullopt when it cannot be estimated.
std::optional<double> ArmEta(const std::vector<RunProgress>& runs, double typical_run_s);

// "1h02m", "3m05s", "12s"; "?" for nullopt.
std::string FormatDuration(std::optional<double> seconds);

// The arm's line (without a line break); `name_width` pads the name.
std::string ArmProgressLine(const std::string& arm, int name_width,
                            const std::vector<RunProgress>& runs, std::optional<double> eta);

}  // namespace fedsim

#endif  // FEDSIM_COMPARE_PROGRESS_H_
