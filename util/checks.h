// Range checks that report into a ProblemList (util/problems.h), shared by the
// config layer and the rules' own validators so that a kind of mistake reads
// the same wherever it is checked:
//
//   CheckPositive(-1, "local.lr", "e.g. 0.1", &p)
//     -> "local.lr": "must be > 0, got -1; e.g. 0.1"
//
// Infinity fails both checks (no parameter here is meant to be infinite);
// NaN fails every check.
//
// Thread safety: free functions without shared state.
#ifndef FEDSIM_UTIL_CHECKS_H_
#define FEDSIM_UTIL_CHECKS_H_

#include <string>
#include <string_view>

#include "util/problems.h"

namespace fedsim {

// A number as problem messages print it (absl::StrCat: up to 6 significant
// digits, "inf", "nan").
std::string NumberText(double v);

// Adds "must be > 0, got <v>; <hint>" under `path` unless v is finite and > 0.
void CheckPositive(double v, const std::string& path, std::string_view hint, ProblemList* problems);

// Adds "must be >= 0, got <v>; <hint>" under `path` unless v is finite and >= 0.
void CheckNonNegative(double v, const std::string& path, std::string_view hint,
                      ProblemList* problems);

}  // namespace fedsim

#endif  // FEDSIM_UTIL_CHECKS_H_
