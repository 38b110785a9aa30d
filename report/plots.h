// The plots of a report, as data: each a JSON object the page's script turns
// into a Chart.js chart (report/html.h). Kept apart from the page so that
// what is drawn can be checked without a browser.
//
//   {"id": "acc_time", "kind": "line", "title": ..., "x_label": ..., "y_label": ...,
//    "y_scale": "linear" | "log",
//    "series": [{"label": "fedbuff", "role": "lo" | "hi" | "mean", "color": "#4e79a7",
//                "data": [[x, y], ...]}, ...]}
//   kind "hist":     "categories": [...], each series' data one value per category
//   kind "timeline": "categories": client rows, data [[row, start, end], ...]
//   kind "heatmap":  "categories": client rows, "bins": n, "x_max": t,
//                    one series, data [[bin_center, row, count], ...] (every cell)
//
// The plots: test accuracy against virtual time and against client updates,
// test loss (on a log scale when every value is positive, so that one
// diverging arm cannot flatten the others), robust accuracy, consensus
// distance and mean client accuracy when the runs have those columns (per
// arm a mean line and a min-max band over seeds: three series), bytes up and
// down (per arm the mean over seeds: two series), the staleness histogram
// (per arm, pooled over seeds), and for one run a per-client timeline and a
// participation heat map.
//
// Thread safety: pure functions.
#ifndef FEDSIM_REPORT_PLOTS_H_
#define FEDSIM_REPORT_PLOTS_H_

#include <cstddef>
#include <string>
#include <vector>

#include "compare/run_files.h"
#include "nlohmann/json.hpp"
#include "report/report_input.h"
#include "report/run_events.h"

namespace fedsim {

// Mean, min and max of column `y` over several runs, against column `x`.
// When every run has the same x values (evaluations on a fixed virtual-time
// or commit schedule, the same for every seed) those are the points;
// otherwise each run is held constant from one evaluation to the next and
// sampled on `max_points` evenly spaced x values over the range all runs
// cover. Rows where y is empty are skipped. More than `max_points` common
// points are thinned to every k-th (the last kept).
struct Band {
  std::vector<double> x, mean, lo, hi;
};
Band BandOverRuns(const std::vector<const MetricsTable*>& runs, const std::string& x,
                  const std::string& y, size_t max_points);

// Share of the updates with staleness 0, 1, ..., bins - 2, and >= bins - 1
// in the last bin. REQUIRES: bins >= 1.
std::vector<double> StalenessShares(const std::vector<uint64_t>& staleness, size_t bins);

struct PlotOptions {
  // Points per curve at most (see BandOverRuns). Default: 400.
  size_t max_points = 400;
  // Timeline: at most this many client rows and tasks (the first dispatched).
  // Default: 30 clients, 1500 tasks.
  size_t timeline_clients = 30;
  size_t timeline_tasks = 1500;
  // Heat map: at most this many client rows, and time bins. Default: 100, 40.
  size_t heatmap_clients = 100;
  size_t heatmap_bins = 40;
  // Staleness histogram bins (the last one holds everything above). Default: 31.
  size_t staleness_bins = 31;
};

// Every plot of the report. `events[i]` belongs to in.runs[i]; `detail_run`
// indexes the run whose timeline and heat map are drawn.
// REQUIRES: events.size() == in.runs.size(), detail_run < in.runs.size().
nlohmann::ordered_json BuildPlots(const ReportInput& in, const std::vector<RunEvents>& events,
                                  size_t detail_run, const PlotOptions& options = {});

}  // namespace fedsim

#endif  // FEDSIM_REPORT_PLOTS_H_
