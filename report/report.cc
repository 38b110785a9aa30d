#include "report/report.h"

#include <cmath>
#include <map>
#include <set>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_replace.h"
#include "report/page_script.h"
#include "util/file.h"

namespace fedsim {
namespace {

std::string Escape(const std::string& s) {
  return absl::StrReplaceAll(s, {{"&", "&amp;"}, {"<", "&lt;"}, {">", "&gt;"}, {"\"", "&quot;"}});
}

// Text safe inside <script>: no "</" can close the element early ("<\/" is
// the same string to JavaScript and JSON).
std::string ScriptSafe(const std::string& s) { return absl::StrReplaceAll(s, {{"</", "<\\/"}}); }

// What each plot shows, under its title.
std::string Description(const std::string& id) {
  static const auto* d = new std::map<std::string, std::string>{
      {"acc_time",
       "Test accuracy of the global model at each evaluation, against virtual time. Per arm: "
       "the mean over seeds (line) and the range from the worst to the best seed (band)."},
      {"acc_updates",
       "The same accuracy against the client updates applied so far: the work the rule needed, "
       "whatever the fleet's speed."},
      {"loss_time",
       "Test loss of the global model (mean line, min-max band over seeds; on a log scale "
       "when every value is positive)."},
      {"robust_time",
       "Accuracy on adversarial test examples (the evaluator's attack), mean and min-max over "
       "seeds."},
      {"consensus_time",
       "How far the client models are from their average (decentralized rules), mean and "
       "min-max over seeds."},
      {"client_acc_time",
       "Mean test accuracy of the evaluated sample of client models (decentralized rules)."},
      {"staleness",
       "How many versions behind the global model each applied update was when it was applied, "
       "as a share of the arm's applied updates (all seeds pooled). Synchronous rules sit at 0."},
      {"bytes_time",
       "Model bytes sent to clients (solid) and updates received from them (dashed), "
       "cumulative, mean over seeds."},
      {"timeline",
       "One bar per task, from dispatch to arrival, per client: blue accepted, red refused by "
       "the rule (too stale, past a deadline), black lost, grey still running at the end."},
      {"participation",
       "Tasks dispatched to each client in each time bin (darker = more): who trained when."},
  };
  auto it = d->find(id);
  return it == d->end() ? "" : it->second;
}

int PlotHeight(const nlohmann::ordered_json& p) {
  const std::string kind = p["kind"];
  if (kind == "timeline" || kind == "heatmap") {
    const int rows = static_cast<int>(p["categories"].size());
    return std::max(240, rows * (kind == "timeline" ? 16 : 10) + 90);
  }
  return 340;
}

std::string Short(const std::string& hash) { return hash.substr(0, 12); }

std::string Header(const ReportInput& in, size_t detail_run) {
  std::string h = absl::StrCat("<h1>fedsim report: ", Escape(in.title), "</h1>\n<p>");
  if (in.is_comparison) {
    absl::StrAppend(&h, "Comparison of ", in.arms.size(), " arms in <code>", Escape(in.dir),
                    "</code>; base scenario <code>", Escape(in.base_scenario), "</code>");
    if (!in.comparison_file.empty()) {
      absl::StrAppend(&h, " (comparison file <code>", Escape(in.comparison_file), "</code>)");
    }
    if (!in.target.empty()) absl::StrAppend(&h, "; target ", Escape(in.target));
    absl::StrAppend(&h, ".");
  } else {
    absl::StrAppend(&h, "Run <code>", Escape(in.dir), "</code>.");
  }
  const RunManifest& first = in.runs[0].manifest;
  std::set<std::string> builds, models;
  for (const ReportRun& r : in.runs) {
    builds.insert(r.manifest.build_id);
    models.insert(r.manifest.model);
  }
  absl::StrAppend(&h, " Model ", Escape(absl::StrJoin(models, ", ")), "; build ",
                  Escape(absl::StrJoin(builds, ", ")), "; numeric fingerprint <code>",
                  Escape(first.numeric_fingerprint), "</code>. Timeline and heat map: ",
                  Escape(absl::StrCat(in.runs[detail_run].arm, " seed ", in.runs[detail_run].seed)),
                  ".</p>\n");
  absl::StrAppend(&h,
                  "<table><tr><th>arm</th><th>rule</th><th>seed</th><th>final acc</th>"
                  "<th>virtual s</th><th>updates</th><th>stopped by</th><th>scenario hash</th>"
                  "<th>final model</th><th>wall s</th></tr>\n");
  for (const ReportRun& r : in.runs) {
    const RunManifest& m = r.manifest;
    absl::StrAppend(&h, "<tr><td>", Escape(r.arm), "</td><td>", Escape(m.algorithm), "</td><td>",
                    r.seed, "</td><td>", absl::StrFormat("%.4f", m.final_accuracy), "</td><td>",
                    absl::StrFormat("%.1f", m.virtual_time), "</td><td>", m.updates_applied,
                    "</td><td>", Escape(m.stop_reason), "</td><td><code title=\"",
                    Escape(m.scenario_hash), "\">", Short(m.scenario_hash),
                    "</code></td><td><code title=\"", Escape(m.final_model_hash), "\">",
                    Short(m.final_model_hash), "</code></td><td>",
                    absl::StrFormat("%.1f", m.wall_s), "</td></tr>\n");
  }
  absl::StrAppend(&h, "</table>\n");
  if (in.is_comparison) {
    absl::StrAppend(&h, "<table><tr><th>arm</th><th>--set</th><th>note</th></tr>\n");
    for (size_t a = 0; a < in.arms.size(); ++a) {
      absl::StrAppend(&h, "<tr><td>", Escape(in.arms[a]), "</td><td><code>",
                      Escape(in.arm_sets[a].empty() ? "(base scenario)" : in.arm_sets[a]),
                      "</code></td><td>", Escape(in.arm_notes[a]), "</td></tr>\n");
    }
    absl::StrAppend(&h, "</table>\n");
  }
  if (!in.missing.empty()) {
    absl::StrAppend(&h, "<p class=\"warn\">Not finished (left out): ",
                    Escape(absl::StrJoin(in.missing, ", ")), ".</p>\n");
  }
  absl::StrAppend(&h, "<details><summary>Scenario of ", Escape(in.runs[detail_run].arm), " seed ",
                  in.runs[detail_run].seed, " (resolved)</summary><pre>",
                  Escape(in.runs[detail_run].scenario_text), "</pre></details>\n");
  return h;
}

}  // namespace

absl::StatusOr<std::string> LoadChartJs(const std::string& path) {
  absl::StatusOr<std::string> text = ReadFileToString(path);
  if (!text.ok() || text->find("Chart") == std::string::npos) {
    return absl::FailedPreconditionError(absl::StrCat(
        "Chart.js is not at ", path,
        ": install the Debian package libjs-chart.js (scripts/install-deps does), or pass "
        "--chartjs=PATH to its chart.min.js (the UMD build of Chart.js 3)"));
  }
  return *text;
}

std::string ReportHtml(const ReportInput& in, const nlohmann::ordered_json& plots,
                       size_t detail_run, const std::string& chartjs) {
  std::string page = absl::StrCat(
      "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\n<title>fedsim report: ",
      Escape(in.title), "</title>\n<style>\n", kPageStyle, "</style>\n<script>", kErrorCatcher,
      "</script>\n<script>\n", ScriptSafe(chartjs), "\n</script>\n</head><body>\n",
      Header(in, detail_run));
  for (const auto& p : plots) {
    const std::string id = p["id"];
    absl::StrAppend(&page, "<section><h2>", Escape(p["title"].get<std::string>()),
                    "</h2>\n<div class=\"chart\" style=\"height:", PlotHeight(p),
                    "px\"><canvas id=\"plot-", id, "\"></canvas></div>\n<p class=\"note\">",
                    Escape(Description(id)), "</p></section>\n");
  }
  absl::StrAppend(&page, "<pre id=\"fedsim-render-check\" hidden></pre>\n",
                  "<script type=\"application/json\" id=\"fedsim-plots\">",
                  ScriptSafe(plots.dump()), "</script>\n<script>\n", kPageScript,
                  "</script>\n</body></html>\n");
  return page;
}

absl::StatusOr<std::string> BuildReportHtml(const std::string& dir, const ReportOptions& options) {
  absl::StatusOr<std::string> chartjs = LoadChartJs(options.chartjs);
  if (!chartjs.ok()) return chartjs.status();
  absl::StatusOr<ReportInput> in = LoadReportInput(dir);
  if (!in.ok()) return in.status();
  size_t detail = 0;
  if (!options.detail_run.empty()) {
    bool found = false;
    std::vector<std::string> names;
    for (size_t i = 0; i < in->runs.size(); ++i) {
      const std::string name = absl::StrCat(in->runs[i].arm, "/seed-", in->runs[i].seed);
      names.push_back(name);
      if (name == options.detail_run) {
        detail = i;
        found = true;
      }
    }
    if (!found) {
      return absl::InvalidArgumentError(
          absl::StrCat("--run=", options.detail_run,
                       " is not a finished run here; one of: ", absl::StrJoin(names, ", ")));
    }
  }
  std::vector<RunEvents> events;
  for (const ReportRun& r : in->runs) {
    absl::StatusOr<RunEvents> e = ReadRunEvents(r.dir + "/events.jsonl");
    if (!e.ok()) return e.status();
    events.push_back(std::move(*e));
  }
  const nlohmann::ordered_json plots = BuildPlots(*in, events, detail, options.plots);
  return ReportHtml(*in, plots, detail, *chartjs);
}

}  // namespace fedsim
