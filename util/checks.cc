#include "util/checks.h"

#include <cmath>

#include "absl/strings/str_cat.h"

namespace fedsim {

std::string NumberText(double v) { return absl::StrCat(v); }

void CheckPositive(double v, const std::string& path, std::string_view hint,
                   ProblemList* problems) {
  if (!(v > 0) || std::isinf(v)) {
    problems->Add(path, absl::StrCat("must be > 0, got ", NumberText(v), "; ", std::string(hint)));
  }
}

void CheckNonNegative(double v, const std::string& path, std::string_view hint,
                      ProblemList* problems) {
  if (!(v >= 0) || std::isinf(v)) {
    problems->Add(path, absl::StrCat("must be >= 0, got ", NumberText(v), "; ", std::string(hint)));
  }
}

}  // namespace fedsim
