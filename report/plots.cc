#include "report/plots.h"

#include <algorithm>
#include <cmath>
#include <map>

#include "absl/strings/str_cat.h"

namespace fedsim {
namespace {

using Json = nlohmann::ordered_json;

// Tableau 10: distinct, colour-blind-friendly, readable on white.
const char* Color(size_t i) {
  static constexpr const char* kPalette[] = {"#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f",
                                             "#edc948", "#b07aa1", "#ff9da7", "#9c755f", "#bab0ac"};
  return kPalette[i % 10];
}

struct Curve {
  std::vector<double> x, y;
};

Curve Extract(const MetricsTable& t, const std::string& x, const std::string& y) {
  Curve c;
  const std::vector<double> xs = t.Column(x), ys = t.Column(y);
  for (size_t i = 0; i < xs.size() && i < ys.size(); ++i) {
    if (std::isfinite(xs[i]) && std::isfinite(ys[i])) {
      c.x.push_back(xs[i]);
      c.y.push_back(ys[i]);
    }
  }
  return c;
}

// The value of a run at x: its last evaluation at or before x (its first
// before that).
double HoldAt(const Curve& c, double x) {
  auto it = std::upper_bound(c.x.begin(), c.x.end(), x);
  if (it == c.x.begin()) return c.y.front();
  return c.y[it - c.x.begin() - 1];
}

Json Points(const std::vector<double>& x, const std::vector<double>& y, double scale = 1) {
  Json out = Json::array();
  for (size_t i = 0; i < x.size(); ++i) out.push_back(Json::array({x[i], y[i] * scale}));
  return out;
}

// The runs of each arm, in arm order.
std::vector<std::vector<size_t>> RunsByArm(const ReportInput& in) {
  std::vector<std::vector<size_t>> by(in.arms.size());
  for (size_t r = 0; r < in.runs.size(); ++r) {
    for (size_t a = 0; a < in.arms.size(); ++a) {
      if (in.runs[r].arm == in.arms[a]) by[a].push_back(r);
    }
  }
  return by;
}

bool AnyHas(const ReportInput& in, const std::string& column) {
  for (const ReportRun& r : in.runs) {
    for (double v : r.metrics.Column(column)) {
      if (std::isfinite(v)) return true;
    }
  }
  return false;
}

Json BandPlot(const ReportInput& in, const std::string& id, const std::string& title,
              const std::string& x, const std::string& x_label, const std::string& y,
              const std::string& y_label, size_t max_points, bool log_y = false) {
  Json series = Json::array();
  bool all_positive = true;
  const auto by_arm = RunsByArm(in);
  for (size_t a = 0; a < in.arms.size(); ++a) {
    if (by_arm[a].empty()) continue;
    std::vector<const MetricsTable*> tables;
    for (size_t r : by_arm[a]) tables.push_back(&in.runs[r].metrics);
    const Band b = BandOverRuns(tables, x, y, max_points);
    if (b.x.empty()) continue;  // an arm without this column
    for (double v : b.lo) all_positive = all_positive && v > 0;
    const std::string seeds = absl::StrCat(tables.size(), tables.size() == 1 ? " seed" : " seeds");
    series.push_back(Json{{"label", in.arms[a] + " min"},
                          {"role", "lo"},
                          {"color", Color(a)},
                          {"data", Points(b.x, b.lo)}});
    series.push_back(Json{{"label", in.arms[a] + " max"},
                          {"role", "hi"},
                          {"color", Color(a)},
                          {"data", Points(b.x, b.hi)}});
    series.push_back(Json{{"label", absl::StrCat(in.arms[a], " (mean of ", seeds, ")")},
                          {"role", "mean"},
                          {"color", Color(a)},
                          {"data", Points(b.x, b.mean)}});
  }
  return Json{{"id", id},
              {"kind", "line"},
              {"title", title},
              {"x_label", x_label},
              {"y_label", y_label},
              {"y_scale", log_y && all_positive ? "log" : "linear"},
              {"series", std::move(series)}};
}

Json BytesPlot(const ReportInput& in, size_t max_points) {
  Json series = Json::array();
  const auto by_arm = RunsByArm(in);
  for (size_t a = 0; a < in.arms.size(); ++a) {
    if (by_arm[a].empty()) continue;
    std::vector<const MetricsTable*> tables;
    for (size_t r : by_arm[a]) tables.push_back(&in.runs[r].metrics);
    for (const char* col : {"bytes_down", "bytes_up"}) {
      const Band b = BandOverRuns(tables, "virtual_time", col, max_points);
      series.push_back(Json{{"label", absl::StrCat(in.arms[a], col[6] == 'd' ? " down" : " up")},
                            {"role", col[6] == 'd' ? "mean" : "mean2"},
                            {"color", Color(a)},
                            {"data", Points(b.x, b.mean, 1e-6)}});
    }
  }
  return Json{{"id", "bytes_time"},
              {"kind", "line"},
              {"title", "Bytes moved (mean over seeds; dashed: up)"},
              {"x_label", "virtual time (s)"},
              {"y_label", "MB (cumulative)"},
              {"series", std::move(series)}};
}

Json StalenessPlot(const ReportInput& in, const std::vector<RunEvents>& events, size_t bins) {
  Json categories = Json::array();
  for (size_t b = 0; b < bins; ++b) {
    categories.push_back(b + 1 == bins ? absl::StrCat(">=", b) : absl::StrCat(b));
  }
  Json series = Json::array();
  const auto by_arm = RunsByArm(in);
  for (size_t a = 0; a < in.arms.size(); ++a) {
    if (by_arm[a].empty()) continue;
    std::vector<uint64_t> pooled;
    for (size_t r : by_arm[a]) {
      pooled.insert(pooled.end(), events[r].staleness.begin(), events[r].staleness.end());
    }
    Json data = Json::array();
    for (double s : StalenessShares(pooled, bins)) data.push_back(s);
    series.push_back(Json{
        {"label", in.arms[a]}, {"role", "bar"}, {"color", Color(a)}, {"data", std::move(data)}});
  }
  return Json{{"id", "staleness"},
              {"kind", "hist"},
              {"title", "Staleness of applied updates (share per arm, seeds pooled)"},
              {"x_label", "staleness (versions behind)"},
              {"y_label", "share of applied updates"},
              {"categories", std::move(categories)},
              {"series", std::move(series)}};
}

std::string RunName(const ReportRun& r) { return absl::StrCat(r.arm, ", seed ", r.seed); }

Json TimelinePlot(const ReportRun& run, const RunEvents& ev, const PlotOptions& o) {
  // The first clients to appear, in id order, and their first tasks.
  std::map<uint32_t, size_t> rows;
  for (const TaskSpan& t : ev.tasks) {
    if (rows.size() < o.timeline_clients) rows.emplace(t.client, 0);
  }
  Json categories = Json::array();
  size_t k = 0;
  for (auto& [client, row] : rows) {
    row = k++;
    categories.push_back(absl::StrCat("client ", client));
  }
  const char* labels[] = {"accepted", "refused by the rule", "lost (never arrived)",
                          "in flight at the end"};
  const char* colors[] = {"#4e79a7", "#e15759", "#000000", "#bab0ac"};
  Json data[4] = {Json::array(), Json::array(), Json::array(), Json::array()};
  size_t shown = 0, total = 0;
  for (const TaskSpan& t : ev.tasks) {
    auto it = rows.find(t.client);
    if (it == rows.end()) continue;
    ++total;
    if (shown >= o.timeline_tasks) continue;
    ++shown;
    data[static_cast<int>(t.kind)].push_back(Json::array({it->second, t.start, t.end}));
  }
  Json series = Json::array();
  for (int i = 0; i < 4; ++i) {
    series.push_back(Json{{"label", labels[i]},
                          {"role", "span"},
                          {"color", colors[i]},
                          {"data", std::move(data[i])}});
  }
  std::string title = absl::StrCat("Tasks of ", RunName(run), ", from dispatch to arrival");
  if (shown < total || rows.size() < ev.max_client + 1) {
    absl::StrAppend(&title, " (first ", rows.size(), " clients, first ", shown, " of their ", total,
                    " tasks)");
  }
  return Json{{"id", "timeline"},
              {"kind", "timeline"},
              {"title", title},
              {"x_label", "virtual time (s)"},
              {"y_label", "client"},
              {"categories", std::move(categories)},
              {"series", std::move(series)}};
}

Json HeatmapPlot(const ReportRun& run, const RunEvents& ev, const PlotOptions& o) {
  const uint32_t clients = std::max<uint32_t>(run.num_clients, ev.max_client + 1);
  const size_t rows = std::min<size_t>(clients, o.heatmap_clients);
  const size_t bins = o.heatmap_bins;
  const double span = ev.end_time > 0 ? ev.end_time : 1;
  std::vector<std::vector<int>> counts(rows, std::vector<int>(bins, 0));
  for (const TaskSpan& t : ev.tasks) {
    if (t.client >= rows) continue;
    const size_t b = std::min(bins - 1, static_cast<size_t>(t.start / span * bins));
    ++counts[t.client][b];
  }
  Json categories = Json::array();
  for (size_t c = 0; c < rows; ++c) categories.push_back(absl::StrCat("client ", c));
  Json data = Json::array();
  int max = 0;
  for (size_t c = 0; c < rows; ++c) {
    for (size_t b = 0; b < bins; ++b) {
      data.push_back(Json::array({(b + 0.5) * span / bins, c, counts[c][b]}));
      max = std::max(max, counts[c][b]);
    }
  }
  std::string title =
      absl::StrCat("Participation of ", RunName(run), ": tasks dispatched per client per time bin");
  if (rows < clients) absl::StrAppend(&title, " (first ", rows, " of ", clients, " clients)");
  Json series = Json::array();
  series.push_back(Json{{"label", "tasks dispatched"},
                        {"role", "cells"},
                        {"color", "#4e79a7"},
                        {"data", std::move(data)}});
  return Json{{"id", "participation"},
              {"kind", "heatmap"},
              {"title", title},
              {"x_label", "virtual time (s)"},
              {"y_label", "client"},
              {"categories", std::move(categories)},
              {"bins", bins},
              {"x_max", span},
              {"max", max},
              {"series", std::move(series)}};
}

}  // namespace

Band BandOverRuns(const std::vector<const MetricsTable*>& runs, const std::string& x,
                  const std::string& y, size_t max_points) {
  Band band;
  std::vector<Curve> curves;
  for (const MetricsTable* t : runs) {
    Curve c = Extract(*t, x, y);
    if (!c.x.empty()) curves.push_back(std::move(c));
  }
  if (curves.empty()) return band;
  bool same_x = true;
  for (const Curve& c : curves) same_x = same_x && c.x == curves[0].x;
  std::vector<double> grid;
  if (same_x) {
    const size_t n = curves[0].x.size();
    const size_t stride = n > max_points ? (n + max_points - 1) / max_points : 1;
    for (size_t i = 0; i < n; i += stride) grid.push_back(curves[0].x[i]);
    if (grid.back() != curves[0].x.back()) grid.push_back(curves[0].x.back());
  } else {
    double lo = -INFINITY, hi = INFINITY;
    size_t longest = 0;
    for (const Curve& c : curves) {
      lo = std::max(lo, c.x.front());
      hi = std::min(hi, c.x.back());
      longest = std::max(longest, c.x.size());
    }
    const size_t n = std::max<size_t>(2, std::min(max_points, longest));
    if (hi <= lo) hi = lo;
    for (size_t i = 0; i < n; ++i) grid.push_back(lo + (hi - lo) * i / (n - 1));
    if (hi == lo) grid.resize(1);
  }
  for (double g : grid) {
    double sum = 0, mn = INFINITY, mx = -INFINITY;
    for (const Curve& c : curves) {
      const double v = HoldAt(c, g);
      sum += v;
      mn = std::min(mn, v);
      mx = std::max(mx, v);
    }
    band.x.push_back(g);
    band.mean.push_back(sum / curves.size());
    band.lo.push_back(mn);
    band.hi.push_back(mx);
  }
  return band;
}

std::vector<double> StalenessShares(const std::vector<uint64_t>& staleness, size_t bins) {
  std::vector<double> out(bins, 0.0);
  if (staleness.empty()) return out;
  for (uint64_t s : staleness) out[std::min<uint64_t>(s, bins - 1)] += 1;
  for (double& v : out) v /= static_cast<double>(staleness.size());
  return out;
}

nlohmann::ordered_json BuildPlots(const ReportInput& in, const std::vector<RunEvents>& events,
                                  size_t detail_run, const PlotOptions& o) {
  Json plots = Json::array();
  plots.push_back(BandPlot(in, "acc_time", "Test accuracy against virtual time", "virtual_time",
                           "virtual time (s)", "test_accuracy", "test accuracy", o.max_points));
  plots.push_back(BandPlot(in, "acc_updates", "Test accuracy against client updates applied",
                           "updates_applied", "client updates applied", "test_accuracy",
                           "test accuracy", o.max_points));
  plots.push_back(BandPlot(in, "loss_time", "Test loss against virtual time", "virtual_time",
                           "virtual time (s)", "test_loss", "test loss", o.max_points,
                           /*log_y=*/true));
  if (AnyHas(in, "robust_accuracy")) {
    plots.push_back(BandPlot(in, "robust_time", "Robust (adversarial) test accuracy",
                             "virtual_time", "virtual time (s)", "robust_accuracy",
                             "robust accuracy", o.max_points));
  }
  if (AnyHas(in, "consensus_distance")) {
    plots.push_back(BandPlot(in, "consensus_time", "Consensus distance of the client models",
                             "virtual_time", "virtual time (s)", "consensus_distance",
                             "consensus distance", o.max_points));
  }
  if (AnyHas(in, "client_accuracy_mean")) {
    plots.push_back(BandPlot(in, "client_acc_time", "Mean accuracy of the sampled client models",
                             "virtual_time", "virtual time (s)", "client_accuracy_mean",
                             "client accuracy (mean)", o.max_points));
  }
  plots.push_back(StalenessPlot(in, events, o.staleness_bins));
  plots.push_back(BytesPlot(in, o.max_points));
  plots.push_back(TimelinePlot(in.runs[detail_run], events[detail_run], o));
  plots.push_back(HeatmapPlot(in.runs[detail_run], events[detail_run], o));
  return plots;
}

}  // namespace fedsim
