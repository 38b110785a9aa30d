#include "tools/flag_checks.h"

#include <string_view>

#include "absl/flags/commandlineflag.h"
#include "absl/flags/reflection.h"
#include "absl/strings/str_cat.h"
#include "rpc/auth.h"
#include "util/checks.h"

namespace fedsim {

void CheckFlagRange(const std::string& flag, int64_t value, int64_t lo, int64_t hi,
                    const std::string& hint, ProblemList* problems) {
  if (value >= lo && value <= hi) return;
  problems->Add(absl::StrCat("--", flag),
                absl::StrCat("must be from ", lo, " to ", hi, ", got ", value, "; ", hint));
}

void CheckFlagSeconds(const std::string& flag, double value, const std::string& hint,
                      ProblemList* problems) {
  CheckPositive(value, absl::StrCat("--", flag), hint, problems);
}

void CheckFlagAddress(const std::string& flag, const std::string& value, const std::string& hint,
                      ProblemList* problems) {
  if (value.empty()) {
    problems->Add(absl::StrCat("--", flag), absl::StrCat("is required: ", hint));
    return;
  }
  if (absl::Status checked = CheckAddress(value); !checked.ok()) {
    problems->Add(absl::StrCat("--", flag), std::string(checked.message()));
  }
}

namespace {

// What a value of `flag` must be, in words.
std::string Expected(const absl::CommandLineFlag& flag, const std::string& parser_error) {
  if (flag.IsOfType<int32_t>() || flag.IsOfType<int64_t>() || flag.IsOfType<uint32_t>() ||
      flag.IsOfType<uint64_t>()) {
    return "is not a whole number";
  }
  if (flag.IsOfType<double>() || flag.IsOfType<float>()) return "is not a number";
  return parser_error.empty() ? "is not a valid value" : "is not valid: " + parser_error;
}

}  // namespace

void CheckFlagSyntax(int argc, char** argv, ProblemList* problems) {
  for (int i = 1; i < argc; ++i) {
    std::string_view arg = argv[i];
    if (arg == "--") break;
    if (arg.size() < 2 || arg[0] != '-') continue;
    arg.remove_prefix(arg[1] == '-' ? 2 : 1);
    const size_t eq = arg.find('=');
    const std::string name(arg.substr(0, eq));
    absl::CommandLineFlag* flag = absl::FindCommandLineFlag(name);
    if (flag == nullptr || flag->IsOfType<bool>()) continue;
    std::string value;
    if (eq != std::string_view::npos) {
      value = std::string(arg.substr(eq + 1));
    } else if (i + 1 < argc) {
      value = argv[++i];
    } else {
      continue;  // "missing value": Abseil's message names the flag
    }
    const std::string before = flag->CurrentValue();
    std::string error;
    if (flag->ParseFrom(value, &error)) {
      flag->ParseFrom(before, &error);  // leave it to ParseCommandLine
      continue;
    }
    problems->Add(absl::StrCat("--", name), absl::StrCat("'", value, "' ", Expected(*flag, error)));
  }
}

int ReportFlagProblems(const std::string& command, const ProblemList& problems, FILE* out) {
  for (const ProblemList::Problem& p : problems.problems()) {
    std::fprintf(out, "fedsim %s: %s: %s\n", command.c_str(), p.path.c_str(), p.message.c_str());
  }
  std::fprintf(out, "(see 'fedsim %s --help')\n", command.c_str());
  return kUsageExitCode;
}

}  // namespace fedsim
