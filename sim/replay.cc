#include "sim/replay.h"

#include <atomic>
#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <map>
#include <mutex>
#include <sstream>
#include <thread>
#include <utility>

#include "absl/strings/str_cat.h"
#include "config/scenario_file.h"
#include "sim/runner.h"
#include "util/status_macros.h"

namespace fedsim {
namespace {

absl::StatusOr<std::string> ReadWholeFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    return absl::NotFoundError(absl::StrCat("cannot read ", path, ": ", std::strerror(errno),
                                            " (is this a run folder written by 'fedsim run'?)"));
  }
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// A tiny reader for our flat JSON lines: {"key":value,...} where a value is a
// number, true/false, a string, or an array/object (skipped, nesting-aware).
class FlatJson {
 public:
  explicit FlatJson(const std::string& s) : s_(s) {}

  // Fills `fields` with key -> raw value text (strings unquoted, unescaped
  // only for \" and \\). False on malformed input.
  bool Parse(std::map<std::string, std::string>* fields) {
    SkipSpace();
    if (!Eat('{')) return false;
    SkipSpace();
    if (Eat('}')) return AtEnd();
    while (true) {
      SkipSpace();
      std::string key;
      if (!ReadString(&key)) return false;
      SkipSpace();
      if (!Eat(':')) return false;
      SkipSpace();
      std::string value;
      if (!ReadValue(&value)) return false;
      (*fields)[key] = std::move(value);
      SkipSpace();
      if (Eat(',')) continue;
      if (Eat('}')) return AtEnd();
      return false;
    }
  }

 private:
  bool AtEnd() {
    SkipSpace();
    return i_ == s_.size();
  }
  void SkipSpace() {
    while (i_ < s_.size() && (s_[i_] == ' ' || s_[i_] == '\t' || s_[i_] == '\r')) ++i_;
  }
  bool Eat(char c) {
    if (i_ < s_.size() && s_[i_] == c) {
      ++i_;
      return true;
    }
    return false;
  }
  bool ReadString(std::string* out) {
    if (!Eat('"')) return false;
    while (i_ < s_.size()) {
      char c = s_[i_++];
      if (c == '"') return true;
      if (c == '\\') {
        if (i_ >= s_.size()) return false;
        c = s_[i_++];
      }
      out->push_back(c);
    }
    return false;
  }
  bool ReadValue(std::string* out) {
    if (i_ >= s_.size()) return false;
    const char c = s_[i_];
    if (c == '"') return ReadString(out);
    if (c == '[' || c == '{') {  // skip a nested array/object
      const size_t start = i_;
      int depth = 0;
      bool in_string = false;
      for (; i_ < s_.size(); ++i_) {
        const char d = s_[i_];
        if (in_string) {
          if (d == '\\') {
            ++i_;
          } else if (d == '"') {
            in_string = false;
          }
        } else if (d == '"') {
          in_string = true;
        } else if (d == '[' || d == '{') {
          ++depth;
        } else if (d == ']' || d == '}') {
          if (--depth == 0) {
            ++i_;
            *out = s_.substr(start, i_ - start);
            return true;
          }
        }
      }
      return false;
    }
    const size_t start = i_;
    while (i_ < s_.size() && s_[i_] != ',' && s_[i_] != '}' && s_[i_] != ' ') ++i_;
    *out = s_.substr(start, i_ - start);
    return !out->empty();
  }

  const std::string& s_;
  size_t i_ = 0;
};

bool ParseU64(const std::string& s, uint64_t* out) {
  if (s.empty() || s[0] == '-') return false;
  char* end = nullptr;
  errno = 0;
  const unsigned long long v = std::strtoull(s.c_str(), &end, 10);
  if (errno != 0 || end != s.c_str() + s.size()) return false;
  *out = v;
  return true;
}

bool ParseDouble(const std::string& s, double* out) {
  if (s.empty()) return false;
  char* end = nullptr;
  errno = 0;
  const double v = std::strtod(s.c_str(), &end);
  if (errno != 0 || end != s.c_str() + s.size()) return false;
  *out = v;
  return true;
}

absl::StatusOr<std::vector<std::string>> ReadLines(const std::string& path) {
  FEDSIM_ASSIGN_OR_RETURN(std::string text, ReadWholeFile(path));
  std::vector<std::string> lines;
  size_t start = 0;
  while (start < text.size()) {
    size_t nl = text.find('\n', start);
    if (nl == std::string::npos) nl = text.size();
    lines.push_back(text.substr(start, nl - start));
    start = nl + 1;
  }
  return lines;
}

}  // namespace

absl::StatusOr<RecordedEvent> ParseEventLine(const std::string& line) {
  std::map<std::string, std::string> f;
  FlatJson json(line);
  if (!json.Parse(&f)) return absl::InvalidArgumentError("not a flat JSON object");
  auto ev = f.find("ev");
  if (ev == f.end() || ev->second.empty()) {
    return absl::InvalidArgumentError("no \"ev\" field");
  }
  RecordedEvent e;
  e.kind = ev->second;
  e.text = line;
  if (e.kind == "dispatch") {
    uint64_t client = 0;
    if (!f.count("task") || !ParseU64(f["task"], &e.task)) {
      return absl::InvalidArgumentError("dispatch without a valid \"task\"");
    }
    if (!f.count("client") || !ParseU64(f["client"], &client) || client > UINT32_MAX) {
      return absl::InvalidArgumentError("dispatch without a valid \"client\"");
    }
    e.client = static_cast<uint32_t>(client);
    if (!f.count("dur") || !ParseDouble(f["dur"], &e.duration) || !(e.duration >= 0) ||
        !std::isfinite(e.duration)) {
      return absl::InvalidArgumentError("dispatch without a valid \"dur\" (seconds >= 0)");
    }
  } else if (e.kind == "avail") {
    uint64_t client = 0;
    if (!f.count("client") || !ParseU64(f["client"], &client) || client > UINT32_MAX) {
      return absl::InvalidArgumentError("avail without a valid \"client\"");
    }
    e.client = static_cast<uint32_t>(client);
    if (!f.count("t") || !ParseDouble(f["t"], &e.time) || !(e.time >= 0) ||
        !std::isfinite(e.time)) {
      return absl::InvalidArgumentError("avail without a valid \"t\" (seconds >= 0)");
    }
    const std::string on = f.count("on") ? f["on"] : "";
    if (on != "true" && on != "false") {
      return absl::InvalidArgumentError("avail without \"on\": true or false");
    }
    e.available = on == "true";
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

absl::StatusOr<RecordedRun> LoadRecordedRun(const std::string& run_dir) {
  RecordedRun run;
  run.run_dir = run_dir;

  const std::string scenario_path = run_dir + "/scenario.textproto";
  FEDSIM_ASSIGN_OR_RETURN(std::string scenario_text, ReadWholeFile(scenario_path));
  absl::StatusOr<config::Scenario> scenario =
      ParseScenarioText(scenario_text, scenario_path, /*overrides=*/{});
  if (!scenario.ok()) {
    return absl::InvalidArgumentError(absl::StrCat(scenario_path, " is not a valid scenario:\n",
                                                   std::string(scenario.status().message())));
  }
  run.scenario = *std::move(scenario);

  const std::string manifest_path = run_dir + "/manifest.json";
  FEDSIM_ASSIGN_OR_RETURN(std::string manifest, ReadWholeFile(manifest_path));
  {
    const std::string key = "\"final_model_hash\"";
    size_t k = manifest.find(key);
    size_t q1 = k == std::string::npos ? k : manifest.find('"', manifest.find(':', k) + 1);
    size_t q2 = q1 == std::string::npos ? q1 : manifest.find('"', q1 + 1);
    if (q2 == std::string::npos) {
      return absl::DataLossError(
          absl::StrCat(manifest_path, ": no \"final_model_hash\" (corrupt or unfinished run)"));
    }
    run.final_model_hash = manifest.substr(q1 + 1, q2 - q1 - 1);
    if (run.final_model_hash.empty()) {
      return absl::DataLossError(absl::StrCat(manifest_path, ": empty \"final_model_hash\""));
    }
  }

  FEDSIM_ASSIGN_OR_RETURN(run.events, ReadEventLog(run_dir + "/events.jsonl"));
  return run;
}

absl::StatusOr<ReplayReport> ReplayRun(const RecordedRun& run, const std::string& out_dir) {
  // The recorded schedule: task id -> (client, duration, line).
  struct Slot {
    uint32_t client;
    double duration;
  };
  std::map<uint64_t, Slot> schedule;
  for (const RecordedEvent& e : run.events) {
    if (e.kind == "dispatch") schedule[e.task] = Slot{e.client, e.duration};
  }

  FEDSIM_ASSIGN_OR_RETURN(std::unique_ptr<PreparedRun> prepared,
                          PrepareRun(run.scenario, run.scenario_dir));

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
    if (rec != nullptr && rep != nullptr && *rec == *rep) continue;
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
