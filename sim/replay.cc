#include "sim/replay.h"

#include <atomic>
#include <cmath>
#include <filesystem>
#include <map>
#include <mutex>
#include <thread>
#include <utility>

#include "absl/strings/str_cat.h"
#include "config/scenario_file.h"
#include "nlohmann/json.hpp"
#include "sim/runner.h"
#include "util/file.h"
#include "util/status_macros.h"

namespace fedsim {
namespace {

// A file of the recorded run's folder.
absl::StatusOr<std::string> ReadRunFile(const std::string& path) {
  absl::StatusOr<std::string> text = ReadFileToString(path);
  if (!text.ok()) {
    return absl::Status(
        text.status().code(),
        absl::StrCat(text.status().message(), " (is this a run folder written by 'fedsim run'?)"));
  }
  return text;
}

// Parses `text` as JSON. InvalidArgument naming where the text goes wrong
// (nlohmann's own message, which counts lines and columns from 1).
absl::StatusOr<nlohmann::json> ParseJson(const std::string& text) {
  // nlohmann reports syntax errors by exception; none leaves this function.
  try {
    return nlohmann::json::parse(text);
  } catch (const nlohmann::json::exception& e) {
    // A syntax error (parse_error) or a number beyond a double (out_of_range):
    // "[json.exception.parse_error.101] parse error at line 1, column 9: ..."
    std::string what = e.what();
    if (const size_t k = what.find("] "); k != std::string::npos) what = what.substr(k + 2);
    return absl::InvalidArgumentError(absl::StrCat("not valid JSON: ", what));
  }
}

// `key` of object `j` as an unsigned integer no larger than `max`.
bool GetUint(const nlohmann::json& j, const char* key, uint64_t max, uint64_t* out) {
  auto it = j.find(key);
  if (it == j.end() || !it->is_number_unsigned()) return false;
  *out = it->get<uint64_t>();
  return *out <= max;
}

// `key` of object `j` as a finite number >= 0 (an integer is fine: "t":0).
bool GetSeconds(const nlohmann::json& j, const char* key, double* out) {
  auto it = j.find(key);
  if (it == j.end() || !it->is_number()) return false;
  *out = it->get<double>();
  return std::isfinite(*out) && *out >= 0;
}

// The lines of a file written on any system: a '\r' before the '\n' and a
// UTF-8 byte-order mark at the start are dropped.
absl::StatusOr<std::vector<std::string>> ReadLines(const std::string& path) {
  FEDSIM_ASSIGN_OR_RETURN(const std::string text, ReadRunFile(path));
  const std::vector<absl::string_view> lines = TextLines(text);
  return std::vector<std::string>(lines.begin(), lines.end());
}

// Whether two events.jsonl lines record the same event: equal as JSON values
// (so 0 and 0.0, or a different key order, are no difference, while every
// number compares exactly), or, when one does not parse, equal as text.
// A wall-clock recording is compared without its times and durations (the
// replay puts each event at its recorded time up to rounding) and without
// the evaluation's figures (a deployment's clients evaluated on their own
// test splits, the replay on the scenario's test set): what must match is
// who trained what from which model, in which order, and what was applied.
bool SameEvent(const std::string& a, const std::string& b, bool wall_clock) {
  if (a == b) return true;
  nlohmann::json ja = nlohmann::json::parse(a, nullptr, /*allow_exceptions=*/false);
  nlohmann::json jb = nlohmann::json::parse(b, nullptr, /*allow_exceptions=*/false);
  if (ja.is_discarded() || jb.is_discarded()) return false;
  if (wall_clock && ja.is_object() && jb.is_object()) {
    for (const char* key : {"t", "dur", "loss", "accuracy"}) {
      ja.erase(key);
      jb.erase(key);
    }
  }
  return ja == jb;
}

}  // namespace

absl::StatusOr<RecordedEvent> ParseEventLine(const std::string& line) {
  FEDSIM_ASSIGN_OR_RETURN(const nlohmann::json j, ParseJson(line));
  if (!j.is_object()) return absl::InvalidArgumentError("not a JSON object");
  auto ev = j.find("ev");
  if (ev == j.end() || !ev->is_string() || ev->get_ref<const std::string&>().empty()) {
    return absl::InvalidArgumentError("no \"ev\" field");
  }
  RecordedEvent e;
  e.kind = ev->get<std::string>();
  e.text = line;
  uint64_t v = 0;
  // A dispatch line, or a wall-clock run's arrival line with the real
  // duration (sim/run_output.h set_real_durations): task, client, dur.
  if (e.kind == "dispatch" || (e.kind == "arrival" && j.contains("dur"))) {
    if (!GetUint(j, "task", UINT64_MAX, &e.task)) {
      return absl::InvalidArgumentError(absl::StrCat(e.kind, " without a valid \"task\""));
    }
    if (!GetUint(j, "client", UINT32_MAX, &v)) {
      return absl::InvalidArgumentError(absl::StrCat(e.kind, " without a valid \"client\""));
    }
    e.client = static_cast<uint32_t>(v);
    if (!GetSeconds(j, "dur", &e.duration)) {
      return absl::InvalidArgumentError(
          absl::StrCat(e.kind, " without a valid \"dur\" (seconds >= 0)"));
    }
    e.real_duration = e.kind == "arrival";
  } else if (e.kind == "avail") {
    if (!GetUint(j, "client", UINT32_MAX, &v)) {
      return absl::InvalidArgumentError("avail without a valid \"client\"");
    }
    e.client = static_cast<uint32_t>(v);
    if (!GetSeconds(j, "t", &e.time)) {
      return absl::InvalidArgumentError("avail without a valid \"t\" (seconds >= 0)");
    }
    auto on = j.find("on");
    if (on == j.end() || !on->is_boolean()) {
      return absl::InvalidArgumentError("avail without \"on\": true or false");
    }
    e.available = on->get<bool>();
  }
  return e;
}

absl::StatusOr<std::vector<RecordedEvent>> ReadEventLog(const std::string& path) {
  FEDSIM_ASSIGN_OR_RETURN(std::vector<std::string> lines, ReadLines(path));
  if (lines.empty()) return absl::DataLossError(absl::StrCat(path, " is empty"));
  std::vector<RecordedEvent> events;
  events.reserve(lines.size());
  for (size_t i = 0; i < lines.size(); ++i) {
    absl::StatusOr<RecordedEvent> e = ParseEventLine(lines[i]);
    if (!e.ok()) {
      return absl::DataLossError(absl::StrCat(path, ":", i + 1, ": ",
                                              std::string(e.status().message()), ": ",
                                              lines[i].substr(0, 200)));
    }
    events.push_back(*std::move(e));
  }
  return events;
}

absl::StatusOr<RecordedRun> LoadRecordedRun(const std::string& run_dir,
                                            const std::vector<std::string>& overrides) {
  RecordedRun run;
  run.run_dir = run_dir;

  const std::string scenario_path = run_dir + "/scenario.textproto";
  FEDSIM_ASSIGN_OR_RETURN(std::string scenario_text, ReadRunFile(scenario_path));
  absl::StatusOr<config::Scenario> scenario =
      ParseScenarioText(scenario_text, scenario_path, overrides);
  if (!scenario.ok()) {
    return absl::InvalidArgumentError(absl::StrCat(scenario_path, " is not a valid scenario:\n",
                                                   std::string(scenario.status().message())));
  }
  run.scenario = *std::move(scenario);

  const std::string manifest_path = run_dir + "/manifest.json";
  FEDSIM_ASSIGN_OR_RETURN(const std::string manifest_text, ReadRunFile(manifest_path));
  absl::StatusOr<nlohmann::json> manifest = ParseJson(manifest_text);
  if (!manifest.ok()) {
    return absl::DataLossError(absl::StrCat(manifest_path, ": ", manifest.status().message(),
                                            " (corrupt or unfinished run)"));
  }
  auto hash = manifest->is_object() ? manifest->find("final_model_hash") : manifest->end();
  if (hash == manifest->end() || !hash->is_string()) {
    return absl::DataLossError(
        absl::StrCat(manifest_path, ": no \"final_model_hash\" (corrupt or unfinished run)"));
  }
  run.final_model_hash = hash->get<std::string>();
  if (run.final_model_hash.empty()) {
    return absl::DataLossError(absl::StrCat(manifest_path, ": empty \"final_model_hash\""));
  }

  FEDSIM_ASSIGN_OR_RETURN(run.events, ReadEventLog(run_dir + "/events.jsonl"));
  return run;
}

std::unordered_map<uint64_t, double> TaskDurations(const std::vector<RecordedEvent>& events) {
  std::unordered_map<uint64_t, std::pair<uint32_t, double>> by_task;  // client, duration
  for (const RecordedEvent& e : events) {
    if (e.kind == "dispatch") by_task[e.task] = {e.client, e.duration};
    if (e.kind == "arrival" && e.real_duration) {
      auto it = by_task.find(e.task);
      if (it != by_task.end() && it->second.first == e.client) it->second.second = e.duration;
    }
  }
  std::unordered_map<uint64_t, double> out;
  for (const auto& [task, slot] : by_task) out[task] = slot.second;
  return out;
}

absl::StatusOr<ReplayReport> ReplayRun(const RecordedRun& run, const std::string& out_dir) {
  // The recorded schedule: task id -> (client, duration, line).
  struct Slot {
    uint32_t client;
    double duration;
  };
  std::map<uint64_t, Slot> schedule;
  const std::unordered_map<uint64_t, double> durations = TaskDurations(run.events);
  for (const RecordedEvent& e : run.events) {
    if (e.kind == "dispatch") schedule[e.task] = Slot{e.client, durations.at(e.task)};
  }

  // A wall-clock run (a deployment) is replayed in simulation: on the
  // virtual clock, with its real durations, and with its clients available
  // when they were connected (its "avail" lines, through the schedule).
  const bool wall_clock = run.scenario.clock().mode() == config::Clock::WALL;
  config::Scenario scenario = run.scenario;
  if (wall_clock) {
    scenario.mutable_clock()->set_mode(config::Clock::VIRTUAL);
    scenario.mutable_clock()->set_time_scale(0);
    if (!scenario.has_schedule()) {
      scenario.mutable_schedule()->set_events(
          std::filesystem::absolute(run.run_dir + "/events.jsonl").string());
    }
  }
  FEDSIM_ASSIGN_OR_RETURN(std::unique_ptr<PreparedRun> prepared,
                          PrepareRun(scenario, run.scenario_dir));

  std::atomic<bool> stop{false};
  std::mutex mu;
  std::string off_schedule;  // first dispatch not in the log, in words
  RunOptions options;
  options.out_dir = out_dir;
  options.progress = nullptr;
  options.interrupt = &stop;
  options.transport_name = "inprocess (replay)";
  options.duration_override = [&](TaskId id, ClientId client) -> std::optional<double> {
    auto it = schedule.find(id);
    if (it != schedule.end() && it->second.client == client) return it->second.duration;
    std::lock_guard<std::mutex> lock(mu);
    if (off_schedule.empty()) {
      off_schedule = it == schedule.end()
                         ? absl::StrCat("the replay dispatched task ", id, " (to client ", client,
                                        "), which the log never dispatched")
                         : absl::StrCat("the replay dispatched task ", id, " to client ", client,
                                        ", the log to client ", it->second.client);
    }
    stop.store(true);
    return std::nullopt;  // the device model; the run stops at its next event
  };

  const int cores = std::max(1u, std::thread::hardware_concurrency());
  options.eval_threads = cores;
  absl::StatusOr<RunOutcome> outcome = RunInProcess(*prepared, cores, options);
  if (!outcome.ok()) return outcome.status();

  ReplayReport report;
  report.replay_dir = outcome->run_dir;
  report.recorded_hash = run.final_model_hash;
  report.replayed_hash = outcome->summary.final_model_hash;
  report.hash_match = report.recorded_hash == report.replayed_hash && off_schedule.empty();

  const std::string replay_events = outcome->run_dir + "/events.jsonl";
  FEDSIM_ASSIGN_OR_RETURN(std::vector<std::string> replayed, ReadLines(replay_events));
  const size_t n = std::max(replayed.size(), run.events.size());
  for (size_t i = 0; i < n; ++i) {
    const std::string* rec = i < run.events.size() ? &run.events[i].text : nullptr;
    const std::string* rep = i < replayed.size() ? &replayed[i] : nullptr;
    if (rec != nullptr && rep != nullptr && SameEvent(*rec, *rep, wall_clock)) continue;
    report.diverged_line = i + 1;
    report.recorded_line = rec != nullptr ? *rec : "";
    report.replayed_line = rep != nullptr ? *rep : "";
    if (rec == nullptr) {
      report.note = "the replay has more events than the log";
    } else if (rep == nullptr) {
      report.note = "the replay ended before the log";
    }
    break;
  }
  if (!off_schedule.empty()) {
    report.note =
        report.note.empty() ? off_schedule : absl::StrCat(off_schedule, "; ", report.note);
  }
  if (report.diverged_line == 0 && !report.hash_match) {
    report.note = absl::StrCat("every event matched but the final model differs",
                               report.note.empty() ? "" : "; ", report.note);
  }
  report.match = report.diverged_line == 0 && report.hash_match;
  return report;
}

}  // namespace fedsim
