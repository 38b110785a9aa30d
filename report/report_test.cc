#include "report/report.h"

#include <unistd.h>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "report/report_test_util.h"

namespace fedsim {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;
using ::testing::Not;

TEST(ReportTest, MissingChartJsSaysWhatToInstall) {
  auto js = LoadChartJs("/nonexistent/chart.min.js");
  ASSERT_FALSE(js.ok());
  EXPECT_EQ(js.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(std::string(js.status().message()), HasSubstr("libjs-chart.js"));
}

TEST(ReportTest, PageInlinesEverythingAndCannotBeBrokenByItsData) {
  const fs::path dir = fs::path(testing::TempDir()) / ("report_page_" + std::to_string(getpid()));
  fs::remove_all(dir);
  WriteFakeRun(dir, "fedavg", 1);
  // A scenario text with markup in it must come out as text.
  std::ofstream(dir / "scenario.textproto") << "name: \"</script><b>x\"\nnum_clients: 3\n";
  const fs::path js = dir / "fake_chart.js";
  std::ofstream(js) << "var Chart = function () {}; /* </script> inside the library */";
  ReportOptions o;
  o.chartjs = js.string();
  auto html = BuildReportHtml(dir.string(), o);
  ASSERT_TRUE(html.ok()) << html.status();
  // One </script> per script element: nothing inside closes one early.
  size_t closes = 0;
  for (size_t p = html->find("</script>"); p != std::string::npos;
       p = html->find("</script>", p + 1)) {
    ++closes;
  }
  EXPECT_EQ(closes, 4u);
  EXPECT_THAT(*html, HasSubstr("<\\/script> inside the library"));
  EXPECT_THAT(*html, HasSubstr("&lt;/script&gt;&lt;b&gt;x"));
  for (const char* id : {"acc_time", "acc_updates", "loss_time", "staleness", "bytes_time",
                         "timeline", "participation"}) {
    EXPECT_THAT(*html, HasSubstr(std::string("<canvas id=\"plot-") + id + "\">")) << id;
  }
  EXPECT_THAT(*html, Not(HasSubstr("plot-robust_time")));
  EXPECT_THAT(*html, HasSubstr(std::string(12, 'a')));  // the scenario hash
  EXPECT_THAT(*html, HasSubstr("<pre id=\"fedsim-render-check\" hidden></pre>"));
  EXPECT_THAT(*html, Not(HasSubstr("http")));  // nothing to fetch
  o.detail_run = "fedavg/seed-9";
  EXPECT_THAT(std::string(BuildReportHtml(dir.string(), o).status().message()),
              HasSubstr("one of: fedavg/seed-1"));
  fs::remove_all(dir);
}

}  // namespace
}  // namespace fedsim
