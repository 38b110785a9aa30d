#include "compare/plan.h"

#include <filesystem>
#include <fstream>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "compare/run_files.h"
#include "config/scenario_file.h"
#include "nlohmann/json.hpp"

namespace fedsim {
namespace {

namespace fs = std::filesystem;
using Json = nlohmann::ordered_json;

// The set member of the scenario's algorithm oneof ("fedbuff"), read through
// reflection so that this file names no rule.
std::string RuleName(const config::Scenario& s) {
  const auto* oneof = config::Algorithm::descriptor()->FindOneofByName("rule");
  if (oneof == nullptr) return "unknown";
  const auto* field = s.algorithm().GetReflection()->GetOneofFieldDescriptor(s.algorithm(), oneof);
  return field == nullptr ? "unknown" : field->name();
}

// "file:line:col: " (or "file: ") for a field of the comparison file.
std::string Where(const ComparisonFile& file, const std::string& path) {
  const std::string name = FileOrPlaceholder(file.path);
  if (auto loc = file.sources.Find(path)) {
    return absl::StrCat(name, ":", loc->line, ":", loc->column, ": ");
  }
  return name + ": ";
}

// Single-quotes `arg` for a POSIX shell when it holds anything but safe characters.
std::string ShellQuote(const std::string& arg) {
  bool safe = !arg.empty();
  for (char c : arg) {
    if (!(std::isalnum(static_cast<unsigned char>(c)) ||
          std::string_view("-_./=:,+@%").find(c) != std::string_view::npos)) {
      safe = false;
    }
  }
  if (safe) return arg;
  std::string out = "'";
  for (char c : arg) {
    if (c == '\'') {
      out += "'\\''";
    } else {
      out += c;
    }
  }
  return out + "'";
}

}  // namespace

absl::StatusOr<ComparisonPlan> PlanComparison(const ComparisonFile& file,
                                              const PlanOptions& options) {
  ComparisonPlan plan;
  plan.file = file;
  compare::Comparison& spec = plan.file.spec;
  if (!options.name.empty()) {
    if (!ValidComparisonName(options.name)) {
      return absl::InvalidArgumentError(
          absl::StrCat("--name='", options.name,
                       "' is not a valid folder name; use letters, digits, '-', "
                       "'_' and '.'"));
    }
    spec.set_name(options.name);
  }
  if (!options.seeds.empty()) {
    spec.clear_seeds();
    for (uint64_t s : options.seeds) spec.add_seeds(s);
  }
  if (!options.out_dir.empty()) spec.set_out_dir(options.out_dir);
  plan.extra_overrides = options.overrides;
  plan.dir = (fs::path(spec.out_dir()) / spec.name()).string();

  std::vector<std::string> problems;
  std::vector<bool> arm_failed(spec.arms_size(), false);
  std::vector<PlannedRun> by_arm_seed;
  for (uint64_t seed : spec.seeds()) {
    for (int a = 0; a < spec.arms_size(); ++a) {
      if (arm_failed[a]) continue;
      const compare::Arm& arm = spec.arms(a);
      PlannedRun run;
      run.arm_index = a;
      run.arm = arm.name();
      run.seed = seed;
      run.overrides = ArmOverrides(plan.file, a, options.overrides, seed);
      absl::StatusOr<config::Scenario> scenario = LoadScenario(file.base_scenario, run.overrides);
      if (!scenario.ok()) {
        arm_failed[a] = true;
        const std::string where = Where(file, absl::StrCat("arms[", a, "]"));
        if (scenario.status().code() == absl::StatusCode::kNotFound) {
          problems.push_back(
              absl::StrCat(Where(file, "scenario"), "scenario: ", scenario.status().message()));
          return absl::InvalidArgumentError(problems.back());
        }
        for (absl::string_view line : absl::StrSplit(scenario.status().message(), '\n')) {
          problems.push_back(absl::StrCat(where, "arm '", arm.name(), "': ", line));
        }
        continue;
      }
      run.dir = (fs::path(plan.dir) / arm.name() / absl::StrCat("seed-", seed)).string();
      run.log_path =
          (fs::path(plan.dir) / "logs" / absl::StrCat(arm.name(), ".seed-", seed, ".log")).string();
      run.scenario_hash = ScenarioHash(*scenario);
      run.max_commits = scenario->stop().max_commits();
      run.max_virtual_s = scenario->stop().max_virtual_s();
      run.algorithm = RuleName(*scenario);
      plan.runs.push_back(std::move(run));
    }
  }
  if (!problems.empty()) return absl::InvalidArgumentError(absl::StrJoin(problems, "\n"));
  return plan;
}

RunInspection InspectRun(const PlannedRun& run) {
  RunInspection out;
  std::error_code ec;
  if (!fs::exists(run.dir, ec)) return out;
  const std::string manifest_path = run.dir + "/manifest.json";
  if (!fs::exists(manifest_path, ec)) {
    out.state = RunState::kUnfinished;
    out.why = "no manifest.json (the run did not finish)";
    return out;
  }
  absl::StatusOr<RunManifest> m = ReadManifest(manifest_path);
  if (!m.ok()) {
    out.state = RunState::kUnfinished;
    out.why = std::string(m.status().message());
    return out;
  }
  if (m->scenario_hash != run.scenario_hash) {
    out.state = RunState::kStale;
    out.why =
        absl::StrCat("its scenario hash ", m->scenario_hash.substr(0, 12), " is not the planned ",
                     run.scenario_hash.substr(0, 12), " (the comparison or its --set changed)");
    return out;
  }
  if (m->stop_reason == "interrupted") {
    out.state = RunState::kUnfinished;
    out.why = "the run was interrupted";
    return out;
  }
  out.state = RunState::kFinished;
  return out;
}

absl::Status ClearRun(const PlannedRun& run) {
  std::error_code ec;
  fs::remove_all(run.dir, ec);
  if (ec)
    return absl::PermissionDeniedError(absl::StrCat("cannot remove ", run.dir, ": ", ec.message()));
  return absl::OkStatus();
}

std::vector<std::string> RunArguments(const ComparisonPlan& plan, const PlannedRun& run, int slots,
                                      int eval_threads) {
  std::vector<std::string> args = {"run", plan.file.base_scenario, "--inprocess",
                                   absl::StrCat("--run_dir=", run.dir)};
  if (slots > 0) args.push_back(absl::StrCat("--slots=", slots));
  if (eval_threads > 0) args.push_back(absl::StrCat("--eval_threads=", eval_threads));
  for (const std::string& o : run.overrides) args.push_back("--set=" + o);
  return args;
}

std::string RunCommandLine(const ComparisonPlan& plan, const PlannedRun& run) {
  std::vector<std::string> words = {"fedsim"};
  for (const std::string& a : RunArguments(plan, run, 0, 0)) words.push_back(ShellQuote(a));
  return absl::StrJoin(words, " ");
}

std::string PlanJson(const ComparisonPlan& plan) {
  const compare::Comparison& spec = plan.file.spec;
  Json arms = Json::array();
  for (const compare::Arm& a : spec.arms()) {
    arms.push_back(Json{{"name", a.name()},
                        {"note", a.note()},
                        {"set", std::vector<std::string>(a.set().begin(), a.set().end())}});
  }
  Json runs = Json::array();
  for (const PlannedRun& r : plan.runs) {
    runs.push_back(Json{{"arm", r.arm},
                        {"seed", r.seed},
                        {"dir", fs::path(r.dir).lexically_relative(plan.dir).string()},
                        {"scenario_hash", r.scenario_hash},
                        {"algorithm", r.algorithm},
                        {"command", RunCommandLine(plan, r)}});
  }
  Json j{{"name", spec.name()},
         {"comparison_file", plan.file.path},
         {"scenario", plan.file.base_scenario},
         {"set", std::vector<std::string>(spec.set().begin(), spec.set().end())},
         {"command_line_set", plan.extra_overrides},
         {"seeds", std::vector<uint64_t>(spec.seeds().begin(), spec.seeds().end())},
         {"final_evals", spec.final_evals()},
         {"arms", std::move(arms)},
         {"runs", std::move(runs)}};
  if (spec.has_target()) {
    j["target"] = Json{{"accuracy", spec.target().accuracy()},
                       {"column", spec.target().column()},
                       {"decide_by", compare::Target::Axis_Name(spec.target().decide_by())}};
  }
  return j.dump(2) + "\n";
}

}  // namespace fedsim
