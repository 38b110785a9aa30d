#include "sim/participation_trace.h"

#include <algorithm>
#include <cstdint>

#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "util/csv.h"
#include "util/status_macros.h"

namespace fedsim {

std::string ResolveTracePath(const std::string& path, const std::string& dir) {
  if (path.empty() || path[0] == '/' || dir.empty()) return path;
  if (dir.back() == '/') return dir + path;
  return dir + "/" + path;
}

void MergeWindows(TraceWindows& windows) {
  for (auto& w : windows) {
    std::sort(w.begin(), w.end());
    std::vector<std::pair<double, double>> merged;
    for (const auto& [s, e] : w) {
      if (!merged.empty() && s <= merged.back().second) {
        merged.back().second = std::max(merged.back().second, e);
      } else {
        merged.emplace_back(s, e);
      }
    }
    w = std::move(merged);
  }
}

absl::StatusOr<TraceWindows> ReadTraceCsv(const std::string& path, size_t num_clients) {
  static constexpr absl::string_view kColumns[] = {"client", "start_s", "end_s"};
  TraceWindows windows(num_clients);
  absl::Status s = ReadCsvFile(path, kColumns, [&](const CsvRow& row) -> absl::Status {
    FEDSIM_ASSIGN_OR_RETURN(const int64_t client, row.Int(0));
    if (client < 0 || static_cast<uint64_t>(client) >= num_clients) {
      return row.Error(
          absl::StrCat("unknown client id ", client, " (num_clients is ", num_clients, ")"));
    }
    FEDSIM_ASSIGN_OR_RETURN(const double start, row.Double(1));
    FEDSIM_ASSIGN_OR_RETURN(const double end, row.Double(2));
    if (start < 0) return row.Error(absl::StrCat("start_s ", start, " is negative"));
    if (!(end > start)) {
      return row.Error(absl::StrCat("end_s ", end, " is not after start_s ", start));
    }
    windows[static_cast<size_t>(client)].emplace_back(start, end);
    return absl::OkStatus();
  });
  if (s.code() == absl::StatusCode::kNotFound) {
    return absl::NotFoundError(absl::StrCat("participation.trace.csv: ", s.message()));
  }
  FEDSIM_RETURN_IF_ERROR(s);
  MergeWindows(windows);
  return windows;
}

}  // namespace fedsim
