#include "sim/schedule.h"

#include <filesystem>
#include <limits>
#include <unordered_map>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "sim/replay.h"
#include "util/csv.h"
#include "util/status_macros.h"

namespace fedsim {
namespace {

// The path to read: `path` under scenario_dir when something is there, else
// `path` itself (relative to the working directory). *tried lists what was
// tried, for the error message.
std::string ResolveSchedulePath(const std::string& path, const std::string& scenario_dir,
                                std::string* tried) {
  std::error_code ec;
  if (path.empty() || path[0] == '/' || scenario_dir.empty() || scenario_dir == ".") {
    *tried = path;
    return path;
  }
  const std::string under =
      scenario_dir.back() == '/' ? scenario_dir + path : absl::StrCat(scenario_dir, "/", path);
  if (std::filesystem::exists(under, ec)) {
    *tried = under;
    return under;
  }
  *tried = absl::StrCat(under, " and ", path, " (relative to the working directory)");
  return path;
}

absl::Status CheckReadable(const std::string& field, const std::string& path,
                           const std::string& tried, const std::string& hint) {
  std::error_code ec;
  if (std::filesystem::is_regular_file(path, ec)) return absl::OkStatus();
  return absl::NotFoundError(absl::StrCat(field, ": cannot read ", tried, "; ", hint));
}

absl::StatusOr<TraceSchedule> LoadEvents(const std::string& given, size_t num_clients,
                                         const std::string& scenario_dir) {
  std::string tried;
  std::string path = ResolveSchedulePath(given, scenario_dir, &tried);
  std::error_code ec;
  if (std::filesystem::is_directory(path, ec)) {
    path = absl::StrCat(path, "/events.jsonl");
    tried = path;
  }
  FEDSIM_RETURN_IF_ERROR(
      CheckReadable("schedule.events", path, tried,
                    "give the events.jsonl of a run written by 'fedsim run', or its run folder"));
  FEDSIM_ASSIGN_OR_RETURN(std::vector<RecordedEvent> events, ReadEventLog(path));

  TraceSchedule out;
  out.source = path;
  out.durations.resize(num_clients);
  // Per client: its recorded changes (time, on), in log order.
  std::vector<std::vector<std::pair<double, bool>>> changes(num_clients);
  bool any_avail = false;
  double last_avail_time = 0;
  // A wall-clock run's dispatches take the real durations of their arrivals.
  const std::unordered_map<uint64_t, double> durations = TaskDurations(events);
  for (size_t i = 0; i < events.size(); ++i) {
    const RecordedEvent& e = events[i];
    if (e.kind != "dispatch" && e.kind != "avail") continue;
    if (e.client >= num_clients) {
      return absl::InvalidArgumentError(
          absl::StrCat(path, ":", i + 1, ": client ", e.client, " is not in [0, ", num_clients,
                       "); the recording had more clients than this scenario's num_clients ",
                       num_clients, " (record and rerun with the same num_clients)"));
    }
    if (e.kind == "dispatch") {
      out.durations[e.client].push_back(durations.at(e.task));
      continue;
    }
    if (e.time < last_avail_time) {
      return absl::InvalidArgumentError(
          absl::StrCat(path, ":", i + 1, ": avail at t = ", e.time,
                       " is earlier than the avail line before it (t = ", last_avail_time,
                       "); the log is out of order"));
    }
    last_avail_time = e.time;
    any_avail = true;
    changes[e.client].emplace_back(e.time, e.available);
  }
  if (!any_avail) return out;

  constexpr double kForever = std::numeric_limits<double>::infinity();
  out.windows.emplace(num_clients);
  for (size_t c = 0; c < num_clients; ++c) {
    auto& w = (*out.windows)[c];
    const auto& ch = changes[c];
    if (ch.empty()) {
      // A dispatched client was available; otherwise the log cannot tell.
      if (!out.durations[c].empty()) {
        w.emplace_back(0.0, kForever);
      } else {
        out.open_availability.push_back(static_cast<ClientId>(c));
      }
      continue;
    }
    // The engine logs only actual changes, so the state before the first
    // one is its opposite.
    bool on = !ch.front().second;
    double since = 0;
    for (const auto& [t, now_on] : ch) {
      if (now_on == on) continue;  // a repeated state (hand-edited log): no change
      if (on && t > since) w.emplace_back(since, t);
      on = now_on;
      since = t;
    }
    if (on) w.emplace_back(since, kForever);
  }
  return out;
}

absl::StatusOr<TraceSchedule> LoadDurationsCsv(const std::string& given, size_t num_clients,
                                               const std::string& scenario_dir) {
  std::string tried;
  const std::string path = ResolveSchedulePath(given, scenario_dir, &tried);
  FEDSIM_RETURN_IF_ERROR(
      CheckReadable("schedule.durations_csv", path, tried,
                    "give a CSV file with the header client,task_index,duration_s"));
  static constexpr absl::string_view kColumns[] = {"client", "task_index", "duration_s"};
  // Per client: task_index -> (duration, line); line 0 = not given.
  std::vector<std::vector<std::pair<double, size_t>>> rows(num_clients);
  absl::Status s = ReadCsvFile(path, kColumns, [&](const CsvRow& row) -> absl::Status {
    FEDSIM_ASSIGN_OR_RETURN(const int64_t client, row.Int(0));
    if (client < 0 || static_cast<uint64_t>(client) >= num_clients) {
      return row.Error(
          absl::StrCat("unknown client id ", client, " (num_clients is ", num_clients, ")"));
    }
    FEDSIM_ASSIGN_OR_RETURN(const uint64_t index, row.Uint(1));
    absl::StatusOr<double> duration = row.Double(2);
    if (!duration.ok() || *duration < 0) {
      return row.Error(
          absl::StrCat("duration_s '", row[2], "' is not a finite number of seconds >= 0"));
    }
    if (index > 10'000'000) {
      return row.Error(
          absl::StrCat("task_index ", index, " is implausibly large (at most 10000000)"));
    }
    auto& r = rows[static_cast<size_t>(client)];
    const size_t k = static_cast<size_t>(index);
    if (r.size() <= k) r.resize(k + 1, {0.0, 0});
    if (r[k].second != 0) {
      return row.Error(absl::StrCat("client ", client, " task_index ", k,
                                    " is given twice (first on line ", r[k].second, ")"));
    }
    r[k] = {*duration, row.line()};
    return absl::OkStatus();
  });
  if (s.code() == absl::StatusCode::kNotFound) {
    return absl::NotFoundError(absl::StrCat("schedule.durations_csv: ", s.message()));
  }
  FEDSIM_RETURN_IF_ERROR(s);

  TraceSchedule out;
  out.source = path;
  out.durations.resize(num_clients);
  for (size_t c = 0; c < num_clients; ++c) {
    for (size_t k = 0; k < rows[c].size(); ++k) {
      if (rows[c][k].second == 0) {
        return absl::InvalidArgumentError(absl::StrCat(
            path, ": client ", c, " has no task_index ", k, " but has task_index ",
            rows[c].size() - 1, "; number each client's tasks 0, 1, 2, ... without gaps"));
      }
      out.durations[c].push_back(rows[c][k].first);
    }
  }
  return out;
}

}  // namespace

std::vector<ClientId> TraceSchedule::ClientsWithoutDurations() const {
  std::vector<ClientId> out;
  for (size_t c = 0; c < durations.size(); ++c) {
    if (durations[c].empty()) out.push_back(static_cast<ClientId>(c));
  }
  return out;
}

absl::StatusOr<TraceSchedule> LoadSchedule(const config::Schedule& config, size_t num_clients,
                                           const std::string& scenario_dir) {
  const bool has_events = !config.events().empty();
  const bool has_csv = !config.durations_csv().empty();
  if (has_events == has_csv) {
    return absl::InvalidArgumentError(
        "schedule: set exactly one of schedule.events and schedule.durations_csv");
  }
  if (num_clients == 0) return absl::InvalidArgumentError("schedule: num_clients is 0");
  if (has_events) return LoadEvents(config.events(), num_clients, scenario_dir);
  return LoadDurationsCsv(config.durations_csv(), num_clients, scenario_dir);
}

ScheduleCursor::ScheduleCursor(const TraceSchedule* schedule)
    : schedule_(schedule), next_(schedule->durations.size(), 0) {}

std::optional<double> ScheduleCursor::Next(ClientId client) {
  const std::vector<double>& d = schedule_->durations[client];
  if (d.empty()) {
    ++fallbacks_;
    return std::nullopt;
  }
  const uint64_t k = next_[client]++;
  if (k >= d.size()) ++cycled_;
  return d[k % d.size()];
}

}  // namespace fedsim
