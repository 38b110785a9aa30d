// Writes a run's folder, runs/<name>/:
//   scenario.textproto  the resolved scenario (every default explicit)
//   events.jsonl        every dispatch, arrival, loss, availability change,
//                       commit (with per-update staleness and weight) and
//                       evaluation: enough to replay the run
//   metrics.csv         one row per evaluation; deterministic columns only
//   timing.csv          the same rows' wall-clock seconds (not deterministic)
//   final_model.bin     "FSMODEL1", u32 format 1, u64 num_params, u64 version,
//                       then num_params little-endian float32
//   manifest.json       scenario hash, seed, build id, final model hash, ...
// events.jsonl (one JSON object per line) and manifest.json are written with
// nlohmann::json: every double reads back bit for bit, NaN and infinities are
// written as null, and the text depends only on the values (so it is
// byte-identical across worker counts). sim/replay.h reads them back.
// Also a progress reporter for the terminal.
//
// Thread safety: called from the engine thread only.
#ifndef FEDSIM_SIM_RUN_OUTPUT_H_
#define FEDSIM_SIM_RUN_OUTPUT_H_

#include <cstdio>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "core/clock.h"
#include "sim/run_observer.h"
#include "util/file.h"  // WriteTextFile, for the run files

namespace fedsim {

// Picks the folder for a run: <dir>/<name>, or <dir>/<name>-2, -3, ... if it
// already holds a run (nothing is overwritten), and creates it.
absl::StatusOr<std::string> MakeRunDir(const std::string& dir, const std::string& name);

// Creates exactly `path` (and its parents) for a run. AlreadyExists when it
// is there and not empty, so no earlier run is overwritten.
absl::Status MakeExactRunDir(const std::string& path);

// Where a resumed run's outputs continue: the byte lengths of events.jsonl,
// metrics.csv and timing.csv when its checkpoint was taken.
struct OutputOffsets {
  uint64_t events = 0;
  uint64_t metrics = 0;
  uint64_t timing = 0;
};

class RunWriter : public RunObserver {
 public:
  // Opens the files in `run_dir` (which must exist) afresh, or, with
  // `resume`, truncates each at its offset and appends from there (then
  // OnStart writes no header). DataLoss when a file is shorter than its
  // offset (the folder is not the one the checkpoint belongs to).
  static absl::StatusOr<std::unique_ptr<RunWriter>> Open(const std::string& run_dir,
                                                         const OutputOffsets* resume = nullptr);
  ~RunWriter() override;

  void OnStart(const std::vector<std::string>& metric_columns) override;
  void OnDispatch(const TaskRecord& task) override;
  void OnArrival(const TaskRecord& task, VirtualTime t, uint64_t staleness,
                 const absl::Status& verdict) override;
  void OnTaskLost(const TaskRecord& task, VirtualTime t, const std::string& why) override;
  void OnAvailability(VirtualTime t, ClientId client, bool available) override;
  void OnCommit(VirtualTime t, Version new_version, const CommitResult& result) override;
  void OnEvaluation(const MetricsRow& row) override;
  // Flushes the three files and records their lengths in the state.
  void OnCheckpoint(ckpt::EngineState* state) override;

  // Wall-clock runs: arrival lines also carry "dur", the task's real
  // duration (arrival time - dispatch time; the dispatch line's "dur" is the
  // device model's), which trace-driven scenarios and replay use instead.
  // Default: false.
  void set_real_durations(bool on) { real_durations_ = on; }

  // Flushes and closes the streams. Errors if any write failed (disk full).
  absl::Status Close();
  const std::string& dir() const { return dir_; }

 private:
  explicit RunWriter(std::string dir) : dir_(std::move(dir)) {}
  std::string dir_;
  bool real_durations_ = false;
  FILE* events_ = nullptr;
  FILE* metrics_ = nullptr;
  FILE* timing_ = nullptr;
  bool write_failed_ = false;
  bool resumed_ = false;              // appending to a resumed run's files
  std::vector<std::string> columns_;  // metrics.csv columns (OnStart)
};

struct ManifestInfo {
  std::string name;
  std::string scenario_hash;
  uint64_t seed = 0;
  std::string build_id;
  // NumericFingerprint (ml/numeric.h): what the model's bits depend on.
  std::string numeric_fingerprint;
  // The rule's notes (a decentralized rule's graph and spectral gap).
  std::vector<std::string> algorithm_notes;
  uint64_t num_params = 0;
  std::string model;  // ModelConfig::ToString()
  std::string algorithm;
  std::string transport;  // "inprocess" or "grpc, W workers"
  // Where the results were trained (Transport::Backends): "cpu", GPU names.
  std::vector<std::string> backends;
  // The robust evaluation (RobustEvalPlanName: attack, eps, subset), or ""
  // for none. Written only when set.
  std::string robust_eval;
  // The evaluator's extra figures at the last evaluation (robust_accuracy,
  // ...), written as "final_<name>".
  std::vector<std::pair<std::string, double>> final_figures;
};

absl::Status WriteFinalModel(const std::string& path, std::span<const float> params,
                             uint64_t version);
// Reads a final_model.bin back (for replay and tools).
absl::StatusOr<std::vector<float>> ReadFinalModel(const std::string& path, uint64_t* version);
absl::Status WriteManifest(const std::string& path, const ManifestInfo& info,
                           const RunSummary& summary);

// Prints progress: a live line on a terminal, a log line per evaluation otherwise.
class ProgressReporter : public RunObserver {
 public:
  // max_commits / max_virtual_s give the ETA (0 = unknown). `clock` times the
  // wall figures and must outlive the reporter.
  // `suffix`, when set, is called for every line and its text appended (a
  // server's connected clients, tasks in flight and slowest client).
  ProgressReporter(FILE* out, bool terminal, uint64_t max_commits, double max_virtual_s,
                   Clock* clock = SystemClock(), std::function<std::string()> suffix = {});
  void OnCommit(VirtualTime t, Version new_version, const CommitResult& result) override;
  void OnEvaluation(const MetricsRow& row) override;
  void OnFinish(const RunSummary& summary) override;

 private:
  void Print(bool final_line);
  double NowSeconds() const { return clock_->SecondsSince(absl::UnixEpoch()); }
  FILE* out_;
  bool terminal_;
  uint64_t max_commits_;
  double max_virtual_s_;
  Clock* clock_;
  std::function<std::string()> suffix_;
  double start_wall_;
  Version version_ = 0;
  VirtualTime t_ = 0;
  uint64_t applied_ = 0;
  double accuracy_ = -1;
  double last_print_ = -1;
};

}  // namespace fedsim

#endif  // FEDSIM_SIM_RUN_OUTPUT_H_
