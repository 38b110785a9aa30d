// Reading a finished run's folder (written by sim/run_output.h): metrics.csv
// by column name, and manifest.json. Columns are looked up by name, never by
// position, since the evaluator, decentralized rules and each rule add their
// own after the base columns.
//
// Thread safety: pure functions; a MetricsTable is a plain value.
#ifndef FEDSIM_COMPARE_RUN_FILES_H_
#define FEDSIM_COMPARE_RUN_FILES_H_

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"

namespace fedsim {

// metrics.csv: one row per evaluation.
class MetricsTable {
 public:
  MetricsTable() = default;
  MetricsTable(std::vector<std::string> columns, std::vector<std::vector<double>> rows)
      : columns_(std::move(columns)), rows_(std::move(rows)) {}

  const std::vector<std::string>& columns() const { return columns_; }
  size_t num_rows() const { return rows_.size(); }
  bool Has(std::string_view column) const { return Index(column) >= 0; }
  // The column's values, one per row; NaN where the cell was empty. Empty
  // when the column does not exist.
  std::vector<double> Column(std::string_view column) const;
  // Row r's value in `column`; NaN when empty or absent. REQUIRES: r < num_rows().
  double At(size_t r, std::string_view column) const;

 private:
  int Index(std::string_view column) const;
  std::vector<std::string> columns_;
  std::vector<std::vector<double>> rows_;
};

// Parses metrics.csv text (header, then one row per evaluation; an empty cell
// is a figure the row has no value for). Errors: InvalidArgument
// "<name>:<line>: ..." for a malformed row.
absl::StatusOr<MetricsTable> ParseMetricsCsv(const std::string& text, const std::string& name);
// ParseMetricsCsv on a file (NotFound when it cannot be read).
absl::StatusOr<MetricsTable> ReadMetricsCsv(const std::string& path);

// The fields of manifest.json that comparisons and reports use.
struct RunManifest {
  std::string name;
  std::string scenario_hash;
  uint64_t seed = 0;
  std::string build_id;
  std::string numeric_fingerprint;
  std::string model;
  std::string algorithm;
  std::string transport;
  std::string final_model_hash;
  std::string stop_reason;
  double final_accuracy = 0;
  double virtual_time = 0;
  uint64_t updates_applied = 0;
  double wall_s = 0;
};

// Reads manifest.json (NotFound when missing, DataLoss when it is not the
// JSON a run writes).
absl::StatusOr<RunManifest> ReadManifest(const std::string& path);

}  // namespace fedsim

#endif  // FEDSIM_COMPARE_RUN_FILES_H_
