#include "compare/comparison_file.h"

#include <filesystem>
#include <map>
#include <set>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "config/diagnostics.h"
#include "util/file.h"
#include "util/problems.h"

namespace fedsim {
namespace {

std::string FileStem(const std::string& path) {
  std::string base = std::filesystem::path(path).filename().string();
  const size_t dot = base.find('.');
  if (dot != std::string::npos && dot > 0) base = base.substr(0, dot);
  for (char& c : base) {
    if (!ValidComparisonName(std::string(1, c))) c = '_';
  }
  return base.empty() ? std::string("comparison") : base;
}

// The field an override assigns: "seed" for "seed=3", "local.lr" for " local.lr = 0.1".
std::string OverridePath(const std::string& text) {
  const size_t eq = text.find('=');
  return std::string(absl::StripAsciiWhitespace(text.substr(0, eq)));
}

// Seeds come from the comparison and names are the comparison's business, so
// a `set` that assigns either would quietly break the pairing of arms by seed.
void CheckSetList(const google::protobuf::RepeatedPtrField<std::string>& sets,
                  const std::string& path, ProblemList* problems) {
  for (int i = 0; i < sets.size(); ++i) {
    const std::string field = OverridePath(sets[i]);
    if (field == "seed") {
      problems->Add(absl::StrCat(path, "[", i, "]"),
                    "may not set 'seed': every arm runs each of the comparison's `seeds`, so "
                    "that arms of one seed see the same data, fleet and participation; list "
                    "seeds in `seeds`");
    } else if (field == "name") {
      problems->Add(absl::StrCat(path, "[", i, "]"),
                    "may not set 'name': the comparison names its runs' folders after the arm");
    }
  }
}

void CheckComparison(const compare::Comparison& c, bool name_from_file, ProblemList* problems) {
  if (!name_from_file && !ValidComparisonName(c.name())) {
    problems->Add("name", absl::StrCat("'", c.name(),
                                       "' is not a valid folder name; use letters, digits, "
                                       "'-', '_' and '.'"));
  }
  if (c.scenario().empty()) {
    problems->Add("scenario",
                  "is required: the base scenario file every arm starts from, relative to this "
                  "file's folder (e.g. scenario: \"../quickstart.textproto\")");
  }
  CheckSetList(c.set(), "set", problems);
  if (c.arms_size() == 0) {
    problems->Add("arms", "at least one arm is required, e.g. arms { name: \"base\" }");
  }
  std::map<std::string, int> seen;
  for (int i = 0; i < c.arms_size(); ++i) {
    const compare::Arm& arm = c.arms(i);
    const std::string path = absl::StrCat("arms[", i, "]");
    if (arm.name().empty()) {
      problems->Add(path + ".name", "is required: it names the arm's row and folder");
    } else if (!ValidComparisonName(arm.name())) {
      problems->Add(path + ".name", absl::StrCat("'", arm.name(),
                                                 "' is not a valid folder name; use letters, "
                                                 "digits, '-', '_' and '.'"));
    } else if (auto [it, fresh] = seen.emplace(arm.name(), i); !fresh) {
      problems->Add(path + ".name", absl::StrCat("'", arm.name(), "' is used by arms[", it->second,
                                                 "] too; arm names must be unique"));
    }
    CheckSetList(arm.set(), path + ".set", problems);
  }
  std::set<uint64_t> seeds;
  for (int i = 0; i < c.seeds_size(); ++i) {
    if (!seeds.insert(c.seeds(i)).second) {
      problems->Add(absl::StrCat("seeds[", i, "]"),
                    absl::StrCat("seed ", c.seeds(i), " is listed twice"));
    }
  }
  if (c.has_target()) {
    const double a = c.target().accuracy();
    if (!(a > 0 && a <= 1)) {
      problems->Add("target.accuracy",
                    absl::StrCat("must be in (0, 1], got ", a, "; e.g. accuracy: 0.8"));
    }
    if (c.target().column().empty()) {
      problems->Add("target.column", "must name a metrics.csv column, e.g. \"test_accuracy\"");
    }
  }
  if (c.final_evals() < 1) {
    problems->Add("final_evals", "must be >= 1 (1 = the last evaluation)");
  }
  if (c.out_dir().empty()) problems->Add("out_dir", "must not be empty (default \"runs\")");
}

}  // namespace

bool ValidComparisonName(const std::string& name) {
  if (name.empty() || name == "." || name == "..") return false;
  for (char c : name) {
    if (!absl::ascii_isalnum(static_cast<unsigned char>(c)) && c != '-' && c != '_' && c != '.') {
      return false;
    }
  }
  return true;
}

absl::StatusOr<ComparisonFile> ParseComparisonText(const std::string& text,
                                                   const std::string& display_name) {
  ComparisonFile out;
  out.path = display_name;
  absl::Status parsed = ParseTextWithSources(text, display_name, &out.spec, &out.sources);
  if (!parsed.ok()) return parsed;
  const bool name_from_file = !out.spec.has_name();
  if (name_from_file) {
    out.spec.set_name(display_name.empty() ? std::string("comparison") : FileStem(display_name));
  }
  if (out.spec.seeds_size() == 0) out.spec.add_seeds(1);
  ProblemList problems;
  CheckComparison(out.spec, name_from_file, &problems);
  if (!problems.empty()) return LocatedStatus(problems, &out.sources);
  std::filesystem::path base(out.spec.scenario());
  if (base.is_relative()) {
    base = std::filesystem::path(display_name).parent_path() / base;
  }
  out.base_scenario = base.lexically_normal().string();
  return out;
}

absl::StatusOr<ComparisonFile> LoadComparison(const std::string& path) {
  absl::StatusOr<std::string> text =
      ReadFileToString(path, {.what = "the comparison file", .max_bytes = uint64_t{16} << 20});
  if (!text.ok()) return text.status();
  if (IsBlankText(*text)) {
    return absl::InvalidArgumentError(
        absl::StrCat(path,
                     ": the comparison file is empty; it names a scenario and arms (see "
                     "scenarios/compare/)"));
  }
  return ParseComparisonText(*text, path);
}

std::vector<std::string> ArmOverrides(const ComparisonFile& file, int arm_index,
                                      const std::vector<std::string>& extra, uint64_t seed) {
  std::vector<std::string> out(file.spec.set().begin(), file.spec.set().end());
  const compare::Arm& arm = file.spec.arms(arm_index);
  out.insert(out.end(), arm.set().begin(), arm.set().end());
  out.insert(out.end(), extra.begin(), extra.end());
  out.push_back(absl::StrCat("seed=", seed));
  return out;
}

}  // namespace fedsim
