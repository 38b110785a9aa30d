#include "algorithms/topology_edge_list.h"

#include <algorithm>
#include <cmath>
#include <unordered_map>
#include <utility>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "util/csv.h"
#include "util/status_macros.h"

namespace fedsim {
namespace {

// Row sums further than this from 1 are errors (the mixing.h tolerance).
constexpr double kRowSumTolerance = 1e-9;
// Bad rows named one by one before "and N more".
constexpr size_t kMaxRowProblems = 10;

struct Entry {
  uint32_t col;
  double weight;
  size_t line;
};

}  // namespace

std::optional<EdgeListContents> ReadEdgeList(const config::Topology::EdgeList& config, uint32_t n,
                                             const std::string& path, ProblemList* problems) {
  const std::string csv_path = path + ".csv";
  const std::string& file = config.csv();
  if (file.empty()) {
    problems->Add(csv_path,
                  "set the CSV file: header `i,j` (edges), or `i,j,weight` (entries "
                  "of a mixing matrix) with weighted = true");
    return std::nullopt;
  }
  const bool weighted = config.weighted();
  static constexpr absl::string_view kEdgeColumns[] = {"i", "j"};
  static constexpr absl::string_view kMatrixColumns[] = {"i", "j", "weight"};
  const absl::Span<const absl::string_view> columns =
      weighted ? absl::Span<const absl::string_view>(kMatrixColumns)
               : absl::Span<const absl::string_view>(kEdgeColumns);

  // Key of an edge {i, j} (unweighted, either order) or an entry (i, j), to
  // the line that first gave it.
  std::unordered_map<uint64_t, size_t> first_line;
  std::vector<std::pair<uint32_t, uint32_t>> edges;
  std::vector<std::vector<Entry>> rows(weighted ? n : 0);

  auto on_row = [&](const CsvRow& row) -> absl::Status {
    FEDSIM_ASSIGN_OR_RETURN(uint64_t i, row.Uint(0));
    FEDSIM_ASSIGN_OR_RETURN(uint64_t j, row.Uint(1));
    for (uint64_t id : {i, j}) {
      if (id >= n) {
        return row.Error(absl::StrCat("client ", id, " does not exist (num_clients is ", n,
                                      ", so ids are 0..", n - 1, ")"));
      }
    }
    const auto u = static_cast<uint32_t>(i), v = static_cast<uint32_t>(j);
    if (!weighted) {
      if (u == v) {
        return row.Error(
            absl::StrCat("self-loop ", u, ",", v, ": an edge joins two different clients"));
      }
      const uint64_t key = static_cast<uint64_t>(std::min(u, v)) * n + std::max(u, v);
      auto [it, inserted] = first_line.emplace(key, row.line());
      if (!inserted) {
        return row.Error(absl::StrCat("duplicate edge ", u, ",", v, " (already on line ",
                                      it->second, "; edges are undirected)"));
      }
      edges.push_back({u, v});
      return absl::OkStatus();
    }
    FEDSIM_ASSIGN_OR_RETURN(double w, row.Double(2));
    auto [it, inserted] = first_line.emplace(static_cast<uint64_t>(u) * n + v, row.line());
    if (!inserted) {
      return row.Error(
          absl::StrCat("duplicate entry ", u, ",", v, " (already on line ", it->second, ")"));
    }
    // A zero entry is no link: i would read j's model only to multiply it by 0.
    if (w != 0) rows[u].push_back({v, w, row.line()});
    return absl::OkStatus();
  };
  absl::Status status = ReadCsvFile(file, columns, on_row, {.report_all_errors = true});
  if (!status.ok()) {
    for (absl::string_view line : absl::StrSplit(status.message(), '\n')) {
      problems->Add(csv_path, std::string(line));
    }
    if (!weighted && absl::StrContains(status.message(), "got 'i,j,weight'")) {
      problems->Add(path + ".weighted", "the file has weights: set weighted = true");
    }
    return std::nullopt;
  }

  EdgeListContents out;
  if (!weighted) {
    out.graph = Graph::FromEdges(n, edges);
    return out;
  }

  std::vector<std::vector<uint32_t>> lists(n);
  CustomMatrix matrix(n);
  size_t bad_rows = 0;
  for (uint32_t i = 0; i < n; ++i) {
    std::vector<Entry>& row = rows[i];
    std::sort(row.begin(), row.end(), [](const Entry& a, const Entry& b) { return a.col < b.col; });
    // Summed in column order, as every check of a mixing matrix does.
    double sum = 0;
    for (const Entry& e : row) {
      sum += e.weight;
      matrix[i].push_back({e.col, e.weight});
      if (e.col != i) lists[i].push_back(e.col);
    }
    if (std::abs(sum - 1) <= kRowSumTolerance) continue;
    if (++bad_rows > kMaxRowProblems) continue;
    std::string message;
    if (row.empty()) {
      message =
          absl::StrCat(file, ": row ", i, " of the mixing matrix has no entries (sums to 0); ",
                       "every row must sum to 1 (give at least the diagonal ", i, ",", i, ",1)");
    } else {
      std::vector<size_t> lines;
      for (const Entry& e : row) lines.push_back(e.line);
      std::sort(lines.begin(), lines.end());
      message = absl::StrFormat(
          "%s: row %d of the mixing matrix sums to %.12g, not 1 (its entries are on lines %s); "
          "every row must sum to 1",
          file, i, sum, absl::StrJoin(lines, ", "));
    }
    problems->Add(csv_path, std::move(message));
  }
  if (bad_rows > kMaxRowProblems) {
    problems->Add(csv_path, absl::StrCat(file, ": and ", bad_rows - kMaxRowProblems,
                                         " more rows that do not sum to 1"));
  }
  if (bad_rows > 0) return std::nullopt;
  out.graph = Graph::FromLists(std::move(lists));
  out.matrix = std::move(matrix);
  return out;
}

}  // namespace fedsim
