// Fuzz target: fedsim's CSV inputs. Byte 0 picks the reader, byte 1 the
// number of clients (1..256), the rest is the file:
//   0 topology edge list, unweighted (algorithms/topology_edge_list.h)
//   1 topology edge list, weighted (a custom mixing matrix)
//   2 participation trace (sim/participation_trace.h)
//   3 device profiles (sim/devices.h ApplyProfilesCsv)
//   4 recorded task durations (sim/schedule.h LoadSchedule durations_csv)
//   5 metrics.csv of a run (compare/run_files.h)
//   6 util/csv.h itself, every cell through its number parsers
// Corpus: tests/fuzz/csv/ (seed files start with those two bytes).
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "algorithms/topology_edge_list.h"
#include "compare/run_files.h"
#include "proto/scenario.pb.h"
#include "sim/devices.h"
#include "sim/participation_trace.h"
#include "sim/schedule.h"
#include "tests/fuzz/fuzz_util.h"
#include "util/csv.h"
#include "util/problems.h"

namespace {

void EdgeList(const std::string& text, uint32_t n, bool weighted) {
  fedsim::fuzz::MemFile file(text);
  fedsim::config::Topology::EdgeList config;
  config.set_csv(file.path());
  config.set_weighted(weighted);
  fedsim::ProblemList problems;
  std::optional<fedsim::EdgeListContents> c =
      fedsim::ReadEdgeList(config, n, "topology.edge_list", &problems);
  FUZZ_CHECK(c.has_value() == problems.empty());
  if (!c) return;
  if (c->matrix) {
    FUZZ_CHECK(c->matrix->size() == n);
    for (const auto& row : *c->matrix) {
      for (const auto& e : row) FUZZ_CHECK(e.col < n && std::isfinite(e.weight));
    }
  }
}

void Trace(const std::string& text, uint32_t n) {
  fedsim::fuzz::MemFile file(text);
  absl::StatusOr<fedsim::TraceWindows> w = fedsim::ReadTraceCsv(file.path(), n);
  if (!w.ok()) return;
  FUZZ_CHECK(w->size() == n);
  for (const auto& client : *w) {
    double last_end = -1;
    for (const auto& [start, end] : client) {
      FUZZ_CHECK(start >= 0 && start < end && start > last_end);
      last_end = end;
    }
  }
}

void Profiles(const std::string& text, uint32_t n) {
  std::vector<fedsim::DeviceProfile> profiles(n);
  if (!fedsim::ApplyProfilesCsv(text, "devices.csv", &profiles).ok()) return;
  for (const fedsim::DeviceProfile& p : profiles) {
    FUZZ_CHECK(p.seconds_per_example >= 0 && p.down_mbps >= 0 && p.up_mbps >= 0);
  }
}

void Durations(const std::string& text, uint32_t n) {
  fedsim::fuzz::MemFile file(text);
  fedsim::config::Schedule config;
  config.set_durations_csv(file.path());
  absl::StatusOr<fedsim::TraceSchedule> s = fedsim::LoadSchedule(config, n, "");
  if (!s.ok()) return;
  FUZZ_CHECK(s->durations.size() == n);
  for (const auto& row : s->durations) {
    for (double d : row) FUZZ_CHECK(std::isfinite(d) && d >= 0);
  }
}

void Metrics(const std::string& text) {
  absl::StatusOr<fedsim::MetricsTable> t = fedsim::ParseMetricsCsv(text, "metrics.csv");
  if (!t.ok()) return;
  for (const std::string& c : t->columns()) FUZZ_CHECK(t->Column(c).size() == t->num_rows());
}

void Generic(const std::string& text) {
  constexpr absl::string_view kColumns[] = {"a", "b", "c"};
  fedsim::ReadCsv(
      text, "x.csv", kColumns,
      [](const fedsim::CsvRow& row) -> absl::Status {
        FUZZ_CHECK(row.size() == 3);
        for (size_t i = 0; i < row.size(); ++i) {
          absl::StatusOr<double> d = row.Double(i);
          if (d.ok()) FUZZ_CHECK(std::isfinite(*d));
          row.Int(i).IgnoreError();
          row.Uint(i).IgnoreError();
        }
        return row.Error("every row is an error here");
      },
      {.report_all_errors = true})
      .IgnoreError();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 2) return 0;
  const uint32_t n = uint32_t{data[1]} + 1;
  const std::string text = fedsim::fuzz::AsString(data + 2, size - 2);
  switch (data[0] % 7) {
    case 0: EdgeList(text, n, false); break;
    case 1: EdgeList(text, n, true); break;
    case 2: Trace(text, n); break;
    case 3: Profiles(text, n); break;
    case 4: Durations(text, n); break;
    case 5: Metrics(text); break;
    default: Generic(text); break;
  }
  return 0;
}
