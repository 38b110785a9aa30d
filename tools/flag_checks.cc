#include "tools/flag_checks.h"

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
  if (absl::StatusOr<HostPort> parsed = ParseHostPort(value); !parsed.ok()) {
    problems->Add(absl::StrCat("--", flag), std::string(parsed.status().message()));
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
