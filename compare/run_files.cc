#include "compare/run_files.h"

#include <cmath>
#include <limits>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "nlohmann/json.hpp"
#include "util/csv.h"
#include "util/file.h"

namespace fedsim {

int MetricsTable::Index(std::string_view column) const {
  for (size_t i = 0; i < columns_.size(); ++i) {
    if (columns_[i] == column) return static_cast<int>(i);
  }
  return -1;
}

std::vector<double> MetricsTable::Column(std::string_view column) const {
  const int i = Index(column);
  std::vector<double> out;
  if (i < 0) return out;
  out.reserve(rows_.size());
  for (const auto& row : rows_) out.push_back(row[i]);
  return out;
}

double MetricsTable::At(size_t r, std::string_view column) const {
  const int i = Index(column);
  return i < 0 ? std::numeric_limits<double>::quiet_NaN() : rows_[r][i];
}

absl::StatusOr<MetricsTable> ParseMetricsCsv(const std::string& text, const std::string& name) {
  // The header names the columns; the shared CSV reader then checks it and
  // every row's cell count (util/csv.h), and empty cells become NaN.
  const absl::string_view rest = SkipByteOrderMark(text);
  const size_t eol = rest.find('\n');
  std::string header(rest.substr(0, eol));
  if (!header.empty() && header.back() == '\r') header.pop_back();
  if (header.empty()) return absl::InvalidArgumentError(absl::StrCat(name, ":1: no header line"));
  std::vector<std::string> columns = absl::StrSplit(header, ',');
  std::vector<absl::string_view> views(columns.begin(), columns.end());
  std::vector<std::vector<double>> rows;
  absl::Status s = ReadCsv(text, name, views, [&](const CsvRow& row) -> absl::Status {
    std::vector<double> values(row.size(), std::numeric_limits<double>::quiet_NaN());
    for (size_t i = 0; i < row.size(); ++i) {
      if (row[i].empty()) continue;
      absl::StatusOr<double> v = row.Double(i);
      if (!v.ok()) return v.status();
      values[i] = *v;
    }
    rows.push_back(std::move(values));
    return absl::OkStatus();
  });
  if (!s.ok()) return s;
  return MetricsTable(std::move(columns), std::move(rows));
}

absl::StatusOr<MetricsTable> ReadMetricsCsv(const std::string& path) {
  absl::StatusOr<std::string> text = ReadFileToString(path);
  if (!text.ok()) return text.status();
  return ParseMetricsCsv(*text, path);
}

absl::StatusOr<RunManifest> ReadManifest(const std::string& path) {
  absl::StatusOr<std::string> text = ReadFileToString(path);
  if (!text.ok()) return text.status();
  nlohmann::json j = nlohmann::json::parse(*text, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object()) {
    return absl::DataLossError(absl::StrCat(path, " is not valid JSON"));
  }
  RunManifest m;
  auto str = [&](const char* key) {
    auto it = j.find(key);
    return it != j.end() && it->is_string() ? it->get<std::string>() : std::string();
  };
  auto num = [&](const char* key) {
    auto it = j.find(key);
    return it != j.end() && it->is_number() ? it->get<double>() : 0.0;
  };
  m.name = str("name");
  m.scenario_hash = str("scenario_hash");
  if (auto it = j.find("seed"); it != j.end() && it->is_number_unsigned()) {
    m.seed = it->get<uint64_t>();
  }
  m.build_id = str("build_id");
  m.numeric_fingerprint = str("numeric_fingerprint");
  m.model = str("model");
  m.algorithm = str("algorithm");
  m.transport = str("transport");
  m.final_model_hash = str("final_model_hash");
  m.stop_reason = str("stop_reason");
  m.final_accuracy = num("final_accuracy");
  m.virtual_time = num("virtual_time");
  if (auto it = j.find("updates_applied"); it != j.end() && it->is_number_unsigned()) {
    m.updates_applied = it->get<uint64_t>();
  }
  m.wall_s = num("wall_s");
  if (m.scenario_hash.empty()) {
    return absl::DataLossError(absl::StrCat(path, " has no scenario_hash: not a run manifest"));
  }
  return m;
}

}  // namespace fedsim
