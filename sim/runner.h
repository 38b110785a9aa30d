// Runs a resolved scenario end to end on a given transport: builds the data,
// device profiles, participation, algorithm and initial model, drives the
// engine, and writes the run folder (see run_output.h). Used by `fedsim run`,
// `fedsim server` and `fedsim replay`, and by the end-to-end tests.
#ifndef FEDSIM_SIM_RUNNER_H_
#define FEDSIM_SIM_RUNNER_H_

#include <atomic>
#include <cstdio>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "core/clock.h"
#include "ml/gpu/device.h"
#include "proto/scenario.pb.h"
#include "runtime/run_setup.h"
#include "runtime/task_runner.h"
#include "sim/devices.h"
#include "sim/engine.h"
#include "sim/federated_evaluator.h"
#include "sim/participation.h"
#include "sim/run_observer.h"
#include "sim/schedule.h"

namespace fedsim {

// Everything that follows from the scenario before the first event.
// Deterministic: two PrepareRun calls on one scenario give identical objects.
struct PreparedRun {
  config::Scenario scenario;  // resolved
  std::string scenario_dir;   // for relative paths (CSV traces)
  std::unique_ptr<RunData> data;
  std::vector<DeviceProfile> profiles;
  // From the scenario's participation, or from the schedule's recorded
  // availability when it has any (see sim/schedule.h).
  std::unique_ptr<ParticipationModel> participation;
  // The scenario's `schedule`, loaded (null when unset).
  std::unique_ptr<const TraceSchedule> schedule;
  size_t num_params = 0;
  std::vector<float> initial_params;
};

// Builds everything above. Errors in the data, device profiles, participation
// and schedule files (missing file, bad row with its line) are reported here,
// before anything runs. Memory that runs out (a scenario past what
// limits.memory_budget_mb guards, e.g. with the budget 0) is
// ResourceExhausted naming the estimate, never an uncaught std::bad_alloc.
// `data`, when given, replaces BuildRunData: the run's figures without its
// examples, for a server whose clients bring their own data
// (RunDataFromClientList); participation that needs the clients' labels is
// then FailedPrecondition.
absl::StatusOr<std::unique_ptr<PreparedRun>> PrepareRun(const config::Scenario& resolved,
                                                        const std::string& scenario_dir,
                                                        std::optional<RunData> data = std::nullopt);

struct RunOptions {
  // Default: "" = the scenario's output.dir. The run goes to <dir>/<name>[-k].
  std::string out_dir;
  // Default: "" = pick <dir>/<name>[-k]; else write exactly here (must not exist).
  std::string run_dir;
  // Progress lines (nullptr = none); `terminal` = a live line with \r.
  FILE* progress = stderr;
  bool terminal = false;
  // Default: 1. Threads for test-set evaluation (results do not depend on it).
  int eval_threads = 1;
  // For the manifest: "inprocess", "grpc, 3 workers", ...
  std::string transport_name = "inprocess";
  // RunInProcess only: where its slots train (ml/gpu/device.h); on a GPU
  // the slots' concurrent tasks share batched launches. Default: the CPU.
  DeviceSpec device;
  // Replay: durations by task id. When it returns a value, that value wins
  // over the scenario's schedule (run.schedule), which is still advanced for
  // every dispatch; nullopt falls through to the schedule, then the device
  // model. Called once per dispatch on the engine thread. Default: none.
  std::function<std::optional<double>(TaskId, ClientId)> duration_override;
  // Files written into a new run folder beside scenario.textproto, as
  // (name, text): e.g. a deployment's admitted client list, clients.csv. A
  // resumed run keeps those it has. Default: none.
  std::vector<std::pair<std::string, std::string>> extra_files;
  // Appended to every progress line (ProgressReporter). Default: none.
  std::function<std::string()> progress_suffix;
  // Extra observers (tests).
  std::vector<RunObserver*> observers;
  const std::atomic<bool>* interrupt = nullptr;
  // Times the progress line's wall figures and, in RunInProcess, the
  // in-process transport (wall-clock emulation, AwaitAny); must outlive the
  // run. Default: SystemClock().
  Clock* clock = SystemClock();
  // The run folder gets a checkpoint (sim/checkpoint.h) after every this
  // many commits and when the run stops; 0 = only when it stops.
  // Default: 20.
  uint32_t checkpoint_every_commits = 20;
  // Continue the run in this folder from its newest good checkpoint instead
  // of starting a new one: its outputs are cut back to the checkpoint and
  // extended, so the finished folder is the same as an undisturbed run's
  // (wall times apart). out_dir and run_dir are ignored. REQUIRES: `run` was
  // prepared from the folder's scenario.textproto. Default: "".
  std::string resume_dir;
  // Runs whose clients bring their own data: the clients that evaluate each
  // model on their own test split (sim/federated_evaluator.h), through the
  // run's transport. Default: empty = central evaluation only.
  std::vector<FederatedClient> federated_eval;
};

// The scenario of a run folder, for resuming it: its scenario.textproto (the
// resolved scenario ExecuteRun wrote) and the folder the original scenario
// file was in, which relative paths in it are relative to (ExecuteRun
// records it in a first comment line, "# scenario_dir: DIR").
struct RunScenario {
  config::Scenario scenario;
  std::string scenario_dir;
};
absl::StatusOr<RunScenario> LoadRunScenario(const std::string& run_dir);

// What `fedsim run` and `fedsim server` start from: with `resume_dir` empty,
// the scenario file at `path` with `overrides` applied, its relative paths
// against the file's folder; otherwise LoadRunScenario(resume_dir), and
// `path` and `overrides` are not used. Errors as LoadScenario's
// (config/scenario_file.h) or LoadRunScenario's.
absl::StatusOr<RunScenario> LoadScenarioToRun(const std::string& path,
                                              const std::vector<std::string>& overrides,
                                              const std::string& resume_dir);

struct RunOutcome {
  RunSummary summary;
  std::string run_dir;
  std::vector<float> final_model;
};

// REQUIRES: the transport executes tasks of `run` (built on run.data) and
// reads base models from `store`. Memory that runs out is ResourceExhausted,
// as in PrepareRun.
absl::StatusOr<RunOutcome> ExecuteRun(const PreparedRun& run, Transport* transport,
                                      ModelStore* store, const RunOptions& options);

// The whole run in this process with `slots` training threads.
absl::StatusOr<RunOutcome> RunInProcess(const PreparedRun& run, int slots,
                                        const RunOptions& options);

}  // namespace fedsim

#endif  // FEDSIM_SIM_RUNNER_H_
