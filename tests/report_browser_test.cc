// report.html in a real browser: `fedsim compare` runs a small comparison,
// `fedsim report` writes pages for it and for one of its runs, and headless
// Chromium loads each page with --dump-dom. The test fails on any JavaScript
// error (the page's own error log and Chromium's console log) and checks
// that every plot holds the series and points the runs' files call for,
// counted here from metrics.csv and events.jsonl, not from the page's data.
// Skips, saying why, when Chromium is not installed (scripts/install-deps
// installs the Debian package `chromium`).
#include <filesystem>
#include <map>
#include <regex>
#include <set>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tests/compare_test_util.h"

namespace fedsim {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;
using Json = nlohmann::json;

std::string FindChromium() {
  for (const char* p : {"/usr/bin/chromium", "/usr/bin/chromium-browser"}) {
    if (fs::exists(p)) return p;
  }
  return "";
}

// Loads `page` in headless Chromium; returns the render check the page wrote
// and appends Chromium's console errors to *console.
Json RenderCheck(const std::string& chromium, const fs::path& page, const fs::path& work,
                 std::string* console) {
  const fs::path profile = work / "chromium-profile";
  fs::remove_all(profile);
  const Ran r = RunProgram(
      {chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
       "--disable-component-update", "--disable-sync", "--no-first-run", "--enable-logging=stderr",
       "--v=0", "--user-data-dir=" + profile.string(), "--virtual-time-budget=5000", "--dump-dom",
       "file://" + fs::absolute(page).string()},
      work / "dom.html", 120);
  EXPECT_EQ(r.code, 0) << r.err;
  for (std::string line; const char c : r.err + "\n") {
    if (c != '\n') {
      line += c;
      continue;
    }
    if (line.find("CONSOLE") != std::string::npos || line.find("Uncaught") != std::string::npos) {
      *console += line + "\n";
    }
    line.clear();
  }
  std::smatch m;
  static const std::regex kCheck(R"re(<pre id="fedsim-render-check"[^>]*>([^<]*)</pre>)re");
  if (!std::regex_search(r.out, m, kCheck)) {
    ADD_FAILURE() << "no render check in the page Chromium dumped (" << r.out.size() << " bytes)";
    return Json::object();
  }
  // The DOM is serialized as HTML: the JSON's quotes come back as text, but
  // & < > are escaped.
  std::string text = m[1];
  for (const auto& [from, to] : std::vector<std::pair<std::string, std::string>>{
           {"&quot;", "\""}, {"&lt;", "<"}, {"&gt;", ">"}, {"&amp;", "&"}}) {
    for (size_t p = text.find(from); p != std::string::npos; p = text.find(from, p + to.size())) {
      text.replace(p, from.size(), to);
    }
  }
  return Json::parse(text);
}

// What the runs' files say each plot must hold.
struct RunCounts {
  size_t rows = 0;  // evaluations
  std::vector<double> times, updates;
  size_t tasks[4] = {0, 0, 0, 0};  // accepted, refused, lost, in flight
};

RunCounts Count(const fs::path& run) {
  RunCounts c;
  std::istringstream metrics(ReadText(run / "metrics.csv"));
  std::string line;
  std::getline(metrics, line);  // the header
  EXPECT_EQ(line.rfind("virtual_time,version,updates_applied,", 0), 0u) << line;
  while (std::getline(metrics, line)) {
    if (line.empty()) continue;
    ++c.rows;
    std::vector<std::string> cells;
    std::istringstream in(line);
    for (std::string cell; std::getline(in, cell, ',');) cells.push_back(cell);
    c.times.push_back(std::stod(cells[0]));    // virtual_time is the first column
    c.updates.push_back(std::stod(cells[2]));  // updates_applied the third
  }
  std::map<long, int> state;  // task -> 0 accepted, 1 refused, 2 lost, 3 in flight
  std::istringstream events(ReadText(run / "events.jsonl"));
  while (std::getline(events, line)) {
    const Json e = Json::parse(line);
    const std::string ev = e["ev"];
    if (ev == "dispatch") state[e["task"].get<long>()] = 3;
    if (ev == "arrival") state[e["task"].get<long>()] = e["accepted"].get<bool>() ? 0 : 1;
    if (ev == "lost") state[e["task"].get<long>()] = 2;
  }
  for (const auto& [task, s] : state) ++c.tasks[s];
  return c;
}

class ReportBrowserTest : public ::testing::Test {
 protected:
  void SetUp() override {
    chromium_ = FindChromium();
    if (chromium_.empty()) {
      GTEST_SKIP() << "Chromium is not installed (/usr/bin/chromium): the report is not checked "
                      "in a browser. Install it with scripts/install-deps (Debian package "
                      "'chromium').";
    }
    dir_ = MakeComparisonFolder("report_browser");
    const Ran r = RunProgram({FEDSIM_BINARY, "compare", (dir_ / "small.textproto").string(),
                              "--out_dir=" + (dir_ / "runs").string(), "--parallel=2"},
                             dir_ / "compare.out");
    ASSERT_EQ(r.code, 0) << r.err;
  }
  void TearDown() override {
    if (!HasFailure() && !dir_.empty()) fs::remove_all(dir_);
  }

  const Json* Plot(const Json& check, const std::string& id) {
    for (const Json& p : check["plots"]) {
      if (p["id"] == id) return &p;
    }
    ADD_FAILURE() << "no plot " << id;
    return nullptr;
  }

  std::string chromium_;
  fs::path dir_;
};

TEST_F(ReportBrowserTest, ComparisonReportDrawsEveryPlotWithoutErrors) {
  const fs::path cmp = dir_ / "runs" / "small";
  const Ran rep = RunProgram({FEDSIM_BINARY, "report", cmp.string()}, dir_ / "report.out");
  ASSERT_EQ(rep.code, 0) << rep.err;
  const std::string html = ReadText(cmp / "report.html");
  EXPECT_THAT(html, ::testing::Not(HasSubstr("src=\"http")));
  std::string console;
  const Json check = RenderCheck(chromium_, cmp / "report.html", dir_, &console);
  EXPECT_EQ(console, "") << "Chromium logged console messages";
  ASSERT_TRUE(check.value("done", false)) << check.dump();
  EXPECT_TRUE(check["errors"].empty()) << check["errors"].dump();

  std::set<std::string> ids;
  for (const Json& p : check["plots"]) ids.insert(p["id"]);
  EXPECT_EQ(ids, (std::set<std::string>{"acc_time", "acc_updates", "loss_time", "staleness",
                                        "bytes_time", "timeline", "participation"}));
  std::map<std::string, std::vector<RunCounts>> runs;
  for (const std::string arm : {"fedavg", "fedbuff"}) {
    for (int seed : {1, 2})
      runs[arm].push_back(Count(cmp / arm / ("seed-" + std::to_string(seed))));
  }
  // Points per curve: one per evaluation when the arm's seeds were evaluated
  // at the same x values, else a grid as long as the arm's longest run
  // (report/plots.h, BandOverRuns).
  auto expected = [&](const std::string& arm, bool by_updates) {
    const auto& c = runs[arm];
    const bool same = by_updates ? c[0].updates == c[1].updates : c[0].times == c[1].times;
    return same ? c[0].rows : std::max(c[0].rows, c[1].rows);
  };
  for (const std::string id : {"acc_time", "loss_time", "acc_updates"}) {
    const Json* p = Plot(check, id);
    ASSERT_NE(p, nullptr);
    ASSERT_EQ((*p)["series"].size(), 6u) << id;  // min, max, mean per arm
    for (size_t s = 0; s < 6; ++s) {
      EXPECT_EQ((*p)["series"][s]["points"].get<size_t>(),
                expected(s < 3 ? "fedavg" : "fedbuff", id == "acc_updates"))
          << id << " series " << s;
    }
  }
  // Chart.js drew the loss on a log axis (losses are positive), the rest linear.
  EXPECT_EQ((*Plot(check, "loss_time"))["y_type"], "logarithmic");
  EXPECT_EQ((*Plot(check, "acc_time"))["y_type"], "linear");
  const Json* bytes = Plot(check, "bytes_time");
  ASSERT_NE(bytes, nullptr);
  ASSERT_EQ((*bytes)["series"].size(), 4u);  // down and up per arm
  for (size_t s = 0; s < 4; ++s) {
    EXPECT_EQ((*bytes)["series"][s]["points"].get<size_t>(),
              expected(s < 2 ? "fedavg" : "fedbuff", false));
  }
  const Json* stale = Plot(check, "staleness");
  ASSERT_NE(stale, nullptr);
  ASSERT_EQ((*stale)["series"].size(), 2u);
  for (const Json& s : (*stale)["series"]) EXPECT_EQ(s["points"].get<size_t>(), 31u);
  // The timeline and heat map show the first run (fedavg, seed 1): all its
  // 20 clients and every one of its tasks.
  const Json* tl = Plot(check, "timeline");
  ASSERT_NE(tl, nullptr);
  ASSERT_EQ((*tl)["series"].size(), 4u);
  for (int k = 0; k < 4; ++k) {
    EXPECT_EQ((*tl)["series"][k]["points"].get<size_t>(), runs["fedavg"][0].tasks[k]) << k;
  }
  EXPECT_GT(runs["fedavg"][0].tasks[0], 10u);
  const Json* hm = Plot(check, "participation");
  ASSERT_NE(hm, nullptr);
  ASSERT_EQ((*hm)["series"].size(), 1u);
  EXPECT_EQ((*hm)["series"][0]["points"].get<size_t>(), 20u * 40);
}

TEST_F(ReportBrowserTest, SingleRunReportWorksToo) {
  const fs::path run = dir_ / "runs" / "small" / "fedbuff" / "seed-2";
  const Ran rep =
      RunProgram({FEDSIM_BINARY, "report", run.string(), "--html=" + (dir_ / "one.html").string()},
                 dir_ / "report.out");
  ASSERT_EQ(rep.code, 0) << rep.err;
  std::string console;
  const Json check = RenderCheck(chromium_, dir_ / "one.html", dir_, &console);
  EXPECT_EQ(console, "");
  ASSERT_TRUE(check.value("done", false)) << check.dump();
  EXPECT_TRUE(check["errors"].empty()) << check["errors"].dump();
  const RunCounts c = Count(run);
  const Json* acc = Plot(check, "acc_time");
  ASSERT_NE(acc, nullptr);
  ASSERT_EQ((*acc)["series"].size(), 3u);
  EXPECT_EQ((*acc)["series"][2]["points"].get<size_t>(), c.rows);
  const Json* tl = Plot(check, "timeline");
  ASSERT_NE(tl, nullptr);
  size_t drawn = 0, tasks = 0;
  for (int k = 0; k < 4; ++k) {
    drawn += (*tl)["series"][k]["points"].get<size_t>();
    tasks += c.tasks[k];
  }
  EXPECT_EQ(drawn, tasks);
  EXPECT_GT(c.tasks[3], 0u);  // FedBuff ends with tasks in flight, drawn grey
}

}  // namespace
}  // namespace fedsim
