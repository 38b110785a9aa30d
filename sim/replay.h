// Record and replay: re-runs a finished run from its events.jsonl schedule
// (each task's recorded duration instead of the device model) and checks that
// the replay reproduces the recorded events and final-model hash. A
// wall-clock run (a deployment) replays in simulation: on the virtual clock,
// each task taking its real recorded duration, clients available when they
// were connected; its events are compared without times, durations and
// evaluation figures (see ReplayRun).
//
//   absl::StatusOr<RecordedRun> rec = LoadRecordedRun("runs/quickstart");
//   absl::StatusOr<ReplayReport> r = ReplayRun(*rec, "/tmp/replays");
//   if (r->match) ...  else  r->diverged_line, r->recorded_line, r->replayed_line
//
// Thread safety: pure functions; no shared state.
#ifndef FEDSIM_SIM_REPLAY_H_
#define FEDSIM_SIM_REPLAY_H_

#include <cstdint>
#include <map>
#include <string>
#include <unordered_map>
#include <vector>

#include "absl/status/statusor.h"
#include "proto/scenario.pb.h"

namespace fedsim {

// One line of events.jsonl, parsed only as far as replay needs.
struct RecordedEvent {
  std::string kind;  // "dispatch", "arrival", "commit", "eval", "avail", "lost"
  std::string text;  // the whole line, for diffs
  // Dispatch, avail and (wall-clock runs) arrival lines.
  uint32_t client = 0;
  // Dispatch lines, and arrival lines with a real duration.
  uint64_t task = 0;
  double duration = 0;  // "dur"
  // An arrival line of a wall-clock run: `duration` is the task's real
  // duration, which replaces its dispatch line's scripted one.
  bool real_duration = false;
  // Avail lines only.
  double time = 0;         // "t", virtual seconds
  bool available = false;  // "on"
};

struct RecordedRun {
  std::string run_dir;
  config::Scenario scenario;          // from scenario.textproto (resolved)
  std::string final_model_hash;       // from manifest.json
  std::vector<RecordedEvent> events;  // events.jsonl, in order (line = index + 1)
  // Where relative paths in the scenario (data dir, CSV traces) are resolved.
  // The run folder does not record the original scenario's folder; default ".".
  std::string scenario_dir = ".";
};

// Reads <run_dir>/scenario.textproto, manifest.json and events.jsonl. Errors
// name the file (and line for events.jsonl) that is missing or corrupt.
// `overrides` (--set FIELD=VALUE, config/overrides.h) change the recorded
// scenario, e.g. where its dataset is.
absl::StatusOr<RecordedRun> LoadRecordedRun(const std::string& run_dir,
                                            const std::vector<std::string>& overrides = {});

// Parses one events.jsonl line with nlohmann::json (sim/run_output.h writes
// them). InvalidArgument when the line is not valid JSON (the message says
// where), not an object, has no string "ev", a dispatch lacks task/client/dur
// (non-negative integers; dur a finite number >= 0), or an avail line lacks
// t/client/on (t a finite number >= 0, on true or false). Other fields and
// kinds are not interpreted.
absl::StatusOr<RecordedEvent> ParseEventLine(const std::string& line);

// Reads and parses a whole events.jsonl; event i comes from line i + 1.
// Lines may end in "\n" or "\r\n" (a log that went through a Windows
// editor or checkout replays the same), and a UTF-8 byte-order mark at the
// start is ignored; RecordedEvent::text never holds the '\r'.
// NotFound when the file cannot be read; DataLoss "<path>:<line>: <what>" for
// an empty file or a line ParseEventLine rejects.
absl::StatusOr<std::vector<RecordedEvent>> ReadEventLog(const std::string& path);

// Per task id of a dispatch line: the duration a replay gives the task, the
// dispatch line's own or, in a wall-clock run, the real one its arrival line
// brings (when that line names the same client).
std::unordered_map<uint64_t, double> TaskDurations(const std::vector<RecordedEvent>& events);

struct ReplayReport {
  bool match = false;         // events identical and final-model hash equal
  std::string replay_dir;     // the new run folder
  std::string recorded_hash;  // manifest.json's final_model_hash
  std::string replayed_hash;  // the replay's final-model hash ("" if it failed)
  bool hash_match = false;
  // First diverging event (when !match): 1-based line of events.jsonl, the
  // recorded and replayed lines ("" = that log ended early / had no such line).
  // 0 when every event matched but the hash did not.
  size_t diverged_line = 0;
  std::string recorded_line;
  std::string replayed_line;
  std::string note;  // why, in words (e.g. "replay dispatched task 9 to client 3 ...")
};

// Re-runs `run` in this process (one training thread per core) into a new run
// folder under `out_dir` with each task's recorded duration, then compares
// events line by line, as JSON values (numbers exactly; 0 and 0.0 are the
// same, so logs written by older builds, which printed "%.17g", still
// compare), and the final-model hash. A replay that dispatches a
// task id / client pair absent from the log stops there and is reported as the
// divergence (not as an error). Errors only for problems outside the
// comparison (bad scenario, cannot write out_dir).
absl::StatusOr<ReplayReport> ReplayRun(const RecordedRun& run, const std::string& out_dir);

}  // namespace fedsim

#endif  // FEDSIM_SIM_REPLAY_H_
