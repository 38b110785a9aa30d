#include "compare/summary.h"

#include <cmath>
#include <functional>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "compare/stats.h"

namespace fedsim {
namespace {

// One figure of the tables: how to get it from a run and how to print it.
struct Figure {
  std::string key;    // summary.csv column stem
  std::string title;  // summary.md header
  std::function<std::optional<double>(const RunFigures&)> get;
  double md_scale = 1;  // summary.md prints value * md_scale
  int decimals = 4;
  bool target = false;  // reached by only some runs: print "(k/n)"
  // In the paired differences: the accuracies, the deciding target figure
  // and the optional figures (bytes and staleness describe, not decide).
  bool paired = true;
};

std::vector<Figure> Figures(const SummaryInput& in) {
  std::vector<Figure> f;
  const int last = static_cast<int>(in.spec.final_evals());
  f.push_back({"final_accuracy",
               last == 1 ? "final acc" : absl::StrCat("final acc (last ", last, ")"),
               [](const RunFigures& r) { return std::optional<double>(r.final_accuracy); }});
  f.push_back({"best_accuracy", "best acc",
               [](const RunFigures& r) { return std::optional<double>(r.best_accuracy); }});
  if (in.spec.has_target()) {
    const std::string acc = absl::StrFormat("%g", in.spec.target().accuracy());
    Figure time{"time_to_target",
                absl::StrCat("virtual s to ", acc),
                [](const RunFigures& r) { return r.time_to_target; },
                1,
                1,
                true};
    Figure updates{"updates_to_target",
                   absl::StrCat("updates to ", acc),
                   [](const RunFigures& r) { return r.updates_to_target; },
                   1,
                   0,
                   true};
    // The deciding figure comes first.
    if (in.spec.target().decide_by() == compare::Target::CLIENT_UPDATES) std::swap(time, updates);
    updates.paired = false;
    f.push_back(time);
    f.push_back(updates);
  }
  f.push_back({"bytes_up", "MB up",
               [](const RunFigures& r) { return std::optional<double>(r.bytes_up); }, 1e-6, 1,
               false, false});
  f.push_back({"bytes_down", "MB down",
               [](const RunFigures& r) { return std::optional<double>(r.bytes_down); }, 1e-6, 1,
               false, false});
  f.push_back({"mean_staleness", "mean staleness",
               [](const RunFigures& r) { return std::optional<double>(r.mean_staleness); }, 1, 2,
               false, false});
  for (const std::string& col : OptionalColumns()) {
    bool any = false;
    for (const ArmResults& a : in.arms) {
      for (const auto& [seed, r] : a.by_seed) any = any || r.extra.count(col) > 0;
    }
    if (!any) continue;
    f.push_back({col, col, [col](const RunFigures& r) -> std::optional<double> {
                   auto it = r.extra.find(col);
                   if (it == r.extra.end()) return std::nullopt;
                   return it->second;
                 }});
  }
  return f;
}

// The figure's values over an arm's finished runs, in seed order.
std::vector<double> Values(const ArmResults& arm, const Figure& f) {
  std::vector<double> out;
  for (const auto& [seed, r] : arm.by_seed) {
    if (std::optional<double> v = f.get(r)) out.push_back(*v);
  }
  return out;
}

std::string Csv(double v) { return absl::StrFormat("%.9g", v); }

std::string Fixed(double v, int decimals) { return absl::StrFormat("%.*f", decimals, v); }

std::string Signed(double v, int decimals) { return absl::StrFormat("%+.*f", decimals, v); }

std::string MdCell(const ArmResults& arm, const Figure& f) {
  const std::vector<double> v = Values(arm, f);
  const size_t n = arm.by_seed.size();
  if (v.empty()) return f.target && n > 0 ? absl::StrCat("— (0/", n, ")") : "—";
  std::string cell = Fixed(Mean(v) * f.md_scale, f.decimals);
  if (v.size() > 1) cell += " ± " + Fixed(SampleStd(v) * f.md_scale, f.decimals);
  if (f.target) absl::StrAppend(&cell, " (", v.size(), "/", n, ")");
  return cell;
}

// Escapes what would break a Markdown table cell.
std::string MdText(const std::string& s) {
  std::string out;
  for (char c : s) {
    if (c == '|') {
      out += "\\|";
    } else if (c == '\n') {
      out += ' ';
    } else {
      out += c;
    }
  }
  return out;
}

}  // namespace

const std::vector<std::string>& OptionalColumns() {
  static const auto* cols = new std::vector<std::string>{
      "robust_accuracy",      "fgsm_accuracy",       "consensus_distance",
      "client_accuracy_mean", "client_accuracy_min", "client_accuracy_max"};
  return *cols;
}

absl::StatusOr<RunFigures> FiguresOfRun(const MetricsTable& m, const compare::Comparison& spec) {
  if (m.num_rows() == 0) return absl::InvalidArgumentError("metrics.csv has no evaluations");
  std::vector<std::string> needed = {"test_accuracy", "virtual_time", "updates_applied",
                                     "bytes_up",      "bytes_down",   "mean_staleness"};
  if (spec.has_target()) needed.push_back(spec.target().column());
  for (const std::string& c : needed) {
    if (!m.Has(c)) {
      return absl::InvalidArgumentError(absl::StrCat("metrics.csv has no column '", c, "'"));
    }
  }
  RunFigures r;
  const std::vector<double> acc = m.Column("test_accuracy");
  const size_t n = acc.size();
  const size_t last = std::min<size_t>(n, std::max<uint32_t>(1, spec.final_evals()));
  double sum = 0;
  for (size_t i = n - last; i < n; ++i) sum += acc[i];
  r.final_accuracy = sum / static_cast<double>(last);
  r.best_accuracy = -1;
  for (double a : acc) {
    if (std::isfinite(a)) r.best_accuracy = std::max(r.best_accuracy, a);
  }
  const std::vector<double> time = m.Column("virtual_time");
  const std::vector<double> applied = m.Column("updates_applied");
  if (spec.has_target()) {
    const std::vector<double> col = m.Column(spec.target().column());
    for (size_t i = 0; i < n; ++i) {
      if (col[i] >= spec.target().accuracy()) {
        r.time_to_target = time[i];
        r.updates_to_target = applied[i];
        break;
      }
    }
  }
  r.bytes_up = m.At(n - 1, "bytes_up");
  r.bytes_down = m.At(n - 1, "bytes_down");
  const std::vector<double> stale = m.Column("mean_staleness");
  double weighted = 0, prev = 0;
  for (size_t i = 0; i < n; ++i) {
    const double k = applied[i] - prev;
    if (k > 0 && std::isfinite(stale[i])) weighted += stale[i] * k;
    prev = applied[i];
  }
  r.mean_staleness = applied[n - 1] > 0 ? weighted / applied[n - 1] : 0;
  for (const std::string& c : OptionalColumns()) {
    const double v = m.At(n - 1, c);
    if (std::isfinite(v)) r.extra[c] = v;
  }
  return r;
}

std::string SummaryCsv(const SummaryInput& in) {
  const std::vector<Figure> figures = Figures(in);
  std::vector<std::string> header = {"arm", "algorithm", "runs", "failed"};
  for (const Figure& f : figures) {
    for (const char* s : {"_mean", "_std", "_n"}) header.push_back(f.key + s);
  }
  std::string out = absl::StrJoin(header, ",") + "\n";
  for (const ArmResults& a : in.arms) {
    std::vector<std::string> row = {a.name, a.algorithm, absl::StrCat(a.by_seed.size()),
                                    absl::StrCat(a.failures.size())};
    for (const Figure& f : figures) {
      const std::vector<double> v = Values(a, f);
      row.push_back(v.empty() ? "" : Csv(Mean(v)));
      row.push_back(v.empty() ? "" : Csv(SampleStd(v)));
      row.push_back(absl::StrCat(v.size()));
    }
    out += absl::StrJoin(row, ",") + "\n";
  }
  return out;
}

std::string SummaryMarkdown(const SummaryInput& in) {
  const std::vector<Figure> figures = Figures(in);
  const compare::Comparison& spec = in.spec;
  std::string out = absl::StrCat("# Comparison `", spec.name(), "`\n\n");
  absl::StrAppend(&out, "Base scenario `", in.base_scenario, "`");
  if (!in.comparison_file.empty()) absl::StrAppend(&out, " (from `", in.comparison_file, "`)");
  absl::StrAppend(&out, "; seeds ", absl::StrJoin(spec.seeds(), ", "), ".\n");
  if (spec.set_size() > 0 || !in.command_line_overrides.empty()) {
    std::vector<std::string> all(spec.set().begin(), spec.set().end());
    all.insert(all.end(), in.command_line_overrides.begin(), in.command_line_overrides.end());
    std::vector<std::string> quoted;
    for (const std::string& s : all) quoted.push_back(absl::StrCat("`--set=", s, "`"));
    absl::StrAppend(&out, "Every arm: ", absl::StrJoin(quoted, " "), ".\n");
  }
  if (spec.has_target()) {
    absl::StrAppend(&out, "Target: ", spec.target().column(),
                    " >= ", absl::StrFormat("%g", spec.target().accuracy()),
                    " (first evaluation that "
                    "reaches it; \"(k/n)\": k of n runs reached it, the mean is over those k).\n");
  }
  absl::StrAppend(&out, "Each cell: mean ± sample standard deviation over seeds. Builds: ",
                  in.build_ids.empty() ? "-" : absl::StrJoin(in.build_ids, ", "), ".\n\n");

  std::vector<std::string> header = {"arm", "rule", "runs"};
  for (const Figure& f : figures) header.push_back(f.title);
  absl::StrAppend(&out, "| ", absl::StrJoin(header, " | "), " |\n|");
  for (size_t i = 0; i < header.size(); ++i) out += i < 3 ? "---|" : "---:|";
  out += "\n";
  for (const ArmResults& a : in.arms) {
    std::vector<std::string> row = {MdText(a.name), a.algorithm, absl::StrCat(a.by_seed.size())};
    for (const Figure& f : figures) row.push_back(MdCell(a, f));
    absl::StrAppend(&out, "| ", absl::StrJoin(row, " | "), " |\n");
  }

  if (in.arms.size() > 1) {
    const ArmResults& base = in.arms[0];
    std::vector<const Figure*> paired;
    for (const Figure& f : figures) {
      if (f.paired) paired.push_back(&f);
    }
    absl::StrAppend(&out, "\n## Paired differences against `", base.name, "`\n\n",
                    "Per seed, arm minus `", base.name,
                    "` on the same seed (the same data, fleet and participation draws), then the "
                    "mean over seeds and its 95% confidence interval, mean ± t(0.975, n−1) · sd / "
                    "√n with Student's t distribution over the n seeds both runs have (for a "
                    "target figure: that both reached). An interval that excludes 0 is a "
                    "difference the seeds agree on; with n = 1 there is no interval.\n\n");
    std::vector<std::string> h = {"arm"};
    for (const Figure* f : paired) h.push_back("Δ " + f->title);
    absl::StrAppend(&out, "| ", absl::StrJoin(h, " | "), " |\n|---|");
    for (size_t i = 1; i < h.size(); ++i) out += "---:|";
    out += "\n";
    for (size_t k = 1; k < in.arms.size(); ++k) {
      const ArmResults& a = in.arms[k];
      std::vector<std::string> row = {MdText(a.name)};
      for (const Figure* f : paired) {
        std::vector<double> d;
        for (const auto& [seed, r] : a.by_seed) {
          auto b = base.by_seed.find(seed);
          if (b == base.by_seed.end()) continue;
          std::optional<double> x = f->get(r), y = f->get(b->second);
          if (x && y) d.push_back((*x - *y) * f->md_scale);
        }
        if (d.empty()) {
          row.push_back("—");
          continue;
        }
        const MeanInterval iv = Interval95(d);
        std::string cell = Signed(iv.mean, f->decimals);
        if (iv.lo) {
          absl::StrAppend(&cell, " [", Signed(*iv.lo, f->decimals), ", ",
                          Signed(*iv.hi, f->decimals), "]");
        }
        absl::StrAppend(&cell, " (n=", iv.n, ")");
        row.push_back(cell);
      }
      absl::StrAppend(&out, "| ", absl::StrJoin(row, " | "), " |\n");
    }
  }

  absl::StrAppend(&out, "\n## Arms\n\n| arm | rule | --set | note |\n|---|---|---|---|\n");
  for (const ArmResults& a : in.arms) {
    std::vector<std::string> sets;
    for (const std::string& s : a.overrides) sets.push_back(absl::StrCat("`", MdText(s), "`"));
    absl::StrAppend(&out, "| ", MdText(a.name), " | ", a.algorithm, " | ",
                    sets.empty() ? "(base scenario)" : absl::StrJoin(sets, " "), " | ",
                    MdText(a.note), " |\n");
  }
  std::vector<std::string> failures;
  for (const ArmResults& a : in.arms) {
    for (const std::string& f : a.failures) failures.push_back(absl::StrCat(a.name, ", ", f));
  }
  if (!failures.empty()) {
    absl::StrAppend(&out, "\n## Failed runs (left out above)\n\n");
    for (const std::string& f : failures) absl::StrAppend(&out, "- ", MdText(f), "\n");
  }
  return out;
}

}  // namespace fedsim
