// fedsim report: writes report.html (report/report.h) for a run folder or a
// comparison folder.
#include <cstdio>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "report/report.h"
#include "sim/run_output.h"
#include "tools/commands.h"

ABSL_FLAG(std::string, html, "", "Where to write the page (default: DIR/report.html).");
ABSL_FLAG(std::string, chartjs, fedsim::kDefaultChartJsPath,
          "Chart.js 3's UMD build to inline (Debian package libjs-chart.js).");
ABSL_FLAG(std::string, run, "",
          "In a comparison, the run whose timeline and heat map are drawn, as ARM/seed-S "
          "(default: the first).");

namespace fedsim {

int ReportMain(int argc, char** argv) {
  std::vector<char*> args = absl::ParseCommandLine(argc, argv);
  if (args.size() != 2) {
    std::fprintf(stderr,
                 "usage: fedsim report RUN_OR_COMPARISON_DIR [--html=FILE] [--run=ARM/seed-S]\n"
                 "(see 'fedsim report --help')\n");
    return 2;
  }
  const std::string dir = args[1];
  ReportOptions options;
  options.chartjs = absl::GetFlag(FLAGS_chartjs);
  options.detail_run = absl::GetFlag(FLAGS_run);
  absl::StatusOr<std::string> html = BuildReportHtml(dir, options);
  if (!html.ok()) {
    std::fprintf(stderr, "fedsim report: %s\n", std::string(html.status().message()).c_str());
    return 1;
  }
  const std::string out =
      absl::GetFlag(FLAGS_html).empty() ? dir + "/report.html" : absl::GetFlag(FLAGS_html);
  if (absl::Status s = WriteTextFile(out, *html); !s.ok()) {
    std::fprintf(stderr, "fedsim report: %s\n", std::string(s.message()).c_str());
    return 1;
  }
  std::printf("%s\n", out.c_str());
  return 0;
}

}  // namespace fedsim
