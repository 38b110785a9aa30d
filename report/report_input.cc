#include "report/report_input.h"

#include <algorithm>
#include <filesystem>
#include <map>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "google/protobuf/text_format.h"
#include "nlohmann/json.hpp"
#include "proto/scenario.pb.h"
#include "util/file.h"

namespace fedsim {
namespace {

namespace fs = std::filesystem;

absl::StatusOr<ReportRun> LoadRun(const std::string& dir, const std::string& arm, uint64_t seed) {
  ReportRun run;
  run.arm = arm;
  run.seed = seed;
  run.dir = dir;
  absl::StatusOr<RunManifest> m = ReadManifest(dir + "/manifest.json");
  if (!m.ok()) return m.status();
  run.manifest = *m;
  absl::StatusOr<MetricsTable> t = ReadMetricsCsv(dir + "/metrics.csv");
  if (!t.ok()) return t.status();
  run.metrics = std::move(*t);
  if (absl::StatusOr<std::string> text = ReadFileToString(dir + "/scenario.textproto"); text.ok()) {
    run.scenario_text = *text;
    config::Scenario s;
    // The resolved scenario of this build; a field a newer build added would
    // fail the parse, and then only the client count is unknown.
    google::protobuf::TextFormat::Parser parser;
    parser.AllowUnknownField(true);
    if (parser.ParseFromString(*text, &s)) run.num_clients = s.num_clients();
  }
  return run;
}

}  // namespace

absl::StatusOr<ReportInput> LoadReportInput(const std::string& dir) {
  ReportInput in;
  in.dir = dir;
  std::error_code ec;
  if (fs::exists(fs::path(dir) / "comparison.json", ec)) {
    in.is_comparison = true;
    absl::StatusOr<std::string> text = ReadFileToString(dir + "/comparison.json");
    if (!text.ok()) return text.status();
    nlohmann::json j = nlohmann::json::parse(*text, nullptr, false);
    if (j.is_discarded() || !j.is_object() || !j.contains("runs") || !j.contains("arms")) {
      return absl::InvalidArgumentError(absl::StrCat(
          dir, "/comparison.json is not a comparison plan (fedsim compare writes it)"));
    }
    in.title = j.value("name", std::string("comparison"));
    in.base_scenario = j.value("scenario", std::string());
    in.comparison_file = j.value("comparison_file", std::string());
    if (j.contains("target")) {
      in.target = absl::StrCat(j["target"].value("column", std::string("test_accuracy")),
                               " >= ", absl::StrFormat("%g", j["target"].value("accuracy", 0.0)));
    }
    std::map<std::string, size_t> arm_index;
    for (const auto& a : j["arms"]) {
      const std::string name = a.value("name", std::string());
      arm_index[name] = in.arms.size();
      in.arms.push_back(name);
      in.arm_notes.push_back(a.value("note", std::string()));
      std::vector<std::string> sets;
      for (const auto& s : a.value("set", std::vector<std::string>())) sets.push_back("--set=" + s);
      in.arm_sets.push_back(absl::StrJoin(sets, " "));
    }
    for (const auto& r : j["runs"]) {
      const std::string arm = r.value("arm", std::string());
      const uint64_t seed = r.value("seed", uint64_t{0});
      const std::string run_dir = (fs::path(dir) / r.value("dir", std::string())).string();
      if (!fs::exists(fs::path(run_dir) / "manifest.json", ec)) {
        in.missing.push_back(absl::StrCat(arm, " seed ", seed));
        continue;
      }
      absl::StatusOr<ReportRun> run = LoadRun(run_dir, arm, seed);
      if (!run.ok()) return run.status();
      in.runs.push_back(std::move(*run));
    }
    if (in.runs.empty()) {
      return absl::InvalidArgumentError(absl::StrCat(
          dir, " has no finished run yet; run 'fedsim compare' on its comparison file first"));
    }
    std::stable_sort(in.runs.begin(), in.runs.end(), [&](const ReportRun& a, const ReportRun& b) {
      const size_t ia = arm_index[a.arm], ib = arm_index[b.arm];
      return ia != ib ? ia < ib : a.seed < b.seed;
    });
    return in;
  }
  if (fs::exists(fs::path(dir) / "metrics.csv", ec)) {
    absl::StatusOr<RunManifest> m = ReadManifest(dir + "/manifest.json");
    if (!m.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat(dir, " has metrics.csv but no readable manifest.json (",
                       m.status().message(), "): the run has not finished"));
    }
    const std::string arm = m->algorithm.empty() ? std::string("run") : m->algorithm;
    absl::StatusOr<ReportRun> run = LoadRun(dir, arm, m->seed);
    if (!run.ok()) return run.status();
    in.title = m->name;
    in.arms = {arm};
    in.arm_notes = {""};
    in.arm_sets = {""};
    in.runs.push_back(std::move(*run));
    return in;
  }
  return absl::InvalidArgumentError(
      absl::StrCat(dir,
                   " is neither a run folder (metrics.csv, manifest.json) nor a comparison folder "
                   "(comparison.json, written by 'fedsim compare')"));
}

}  // namespace fedsim
