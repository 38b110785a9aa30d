// `fedsim report`: one self-contained report.html for a run folder or a
// comparison folder. The page inlines Chart.js (Debian's libjs-chart.js,
// found at run time) and the plot data (report/plots.h), so it opens
// offline; a header names the scenario, the builds and the hashes.
//
// The page checks itself: when its script has drawn every chart it writes
// {"done": true, "errors": [...], "plots": [{"id", "kind", "y_type",
// "series": [{"label", "points"}]}]} into <pre id="fedsim-render-check">,
// with the type of Chart.js's y axis ("linear", "logarithmic", "category"),
// the number of elements Chart.js drew per series and every JavaScript error
// seen, so a headless browser's --dump-dom shows whether the page works
// (tests/report_browser_test.cc).
//
// Thread safety: pure functions over the file system.
#ifndef FEDSIM_REPORT_REPORT_H_
#define FEDSIM_REPORT_REPORT_H_

#include <string>

#include "absl/status/statusor.h"
#include "report/plots.h"
#include "report/report_input.h"

namespace fedsim {

// Where Debian's libjs-chart.js puts the UMD build of Chart.js 3.
inline constexpr char kDefaultChartJsPath[] = "/usr/share/javascript/chart.js/chart.min.js";

struct ReportOptions {
  // Chart.js's UMD build. Default: kDefaultChartJsPath.
  std::string chartjs = kDefaultChartJsPath;
  // The run whose timeline and heat map are drawn: "ARM/seed-S" in a
  // comparison. Default: "" = the first run.
  std::string detail_run;
  PlotOptions plots;
};

// Chart.js's source, or FailedPrecondition saying which package to install
// (or which --chartjs to pass) when it is missing.
absl::StatusOr<std::string> LoadChartJs(const std::string& path);

// The page for an input and its plots; `chartjs` is Chart.js's source.
std::string ReportHtml(const ReportInput& in, const nlohmann::ordered_json& plots,
                       size_t detail_run, const std::string& chartjs);

// LoadReportInput, the events of every run, BuildPlots and ReportHtml.
absl::StatusOr<std::string> BuildReportHtml(const std::string& dir, const ReportOptions& options);

}  // namespace fedsim

#endif  // FEDSIM_REPORT_REPORT_H_
