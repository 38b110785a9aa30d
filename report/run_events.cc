#include "report/run_events.h"

#include <algorithm>
#include <unordered_map>

#include "absl/strings/str_cat.h"
#include "nlohmann/json.hpp"
#include "util/file.h"

namespace fedsim {

absl::StatusOr<RunEvents> ParseRunEvents(const std::string& text, const std::string& name) {
  RunEvents out;
  std::unordered_map<uint64_t, size_t> open;  // task id -> index in out.tasks
  size_t line_no = 0;
  for (const absl::string_view line : TextLines(text)) {
    ++line_no;
    if (line.empty()) continue;
    nlohmann::json e = nlohmann::json::parse(line, nullptr, false);
    if (e.is_discarded() || !e.is_object()) {
      return absl::InvalidArgumentError(absl::StrCat(name, ":", line_no, ": not a JSON object"));
    }
    const std::string ev = e.value("ev", std::string());
    const double t = e.contains("t") && e["t"].is_number() ? e["t"].get<double>() : 0.0;
    out.end_time = std::max(out.end_time, t);
    if (ev == "dispatch") {
      TaskSpan s;
      s.task = e.value("task", uint64_t{0});
      s.client = e.value("client", uint32_t{0});
      s.start = t;
      s.end = t;
      out.max_client = std::max(out.max_client, s.client);
      open[s.task] = out.tasks.size();
      out.tasks.push_back(s);
    } else if (ev == "arrival" || ev == "lost") {
      auto it = open.find(e.value("task", uint64_t{0}));
      if (it == open.end()) continue;
      TaskSpan& s = out.tasks[it->second];
      s.end = t;
      s.kind = ev == "lost"                ? TaskSpan::Kind::kLost
               : e.value("accepted", true) ? TaskSpan::Kind::kAccepted
                                           : TaskSpan::Kind::kRefused;
      open.erase(it);
    } else if (ev == "commit" && e.contains("applied") && e["applied"].is_array()) {
      for (const auto& a : e["applied"]) out.staleness.push_back(a.value("staleness", uint64_t{0}));
    }
  }
  for (const auto& [task, index] : open) out.tasks[index].end = out.end_time;
  return out;
}

absl::StatusOr<RunEvents> ReadRunEvents(const std::string& path) {
  absl::StatusOr<std::string> text = ReadFileToString(path);
  if (!text.ok()) return text.status();
  return ParseRunEvents(*text, path);
}

}  // namespace fedsim
