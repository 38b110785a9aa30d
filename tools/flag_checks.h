// Range checks for the numeric and address flags of the `fedsim` commands, so
// that a value out of range is a usage error naming the flag and what it
// takes, not a silent default:
//
//   fedsim run: --workers: must be from 0 to 1024, got -1; 0 = one per CPU core
//   fedsim client: --connect_timeout_s: must be > 0, got nan; seconds to keep
//       trying to reach the server at start
//   fedsim server: --listen: address 'garbage' is not HOST:PORT: no port
//
// Each command collects its flags' problems in a ProblemList (util/problems.h)
// under the path "--<flag>" and reports them all at once:
//
//   ProblemList problems;
//   CheckFlagRange("workers", absl::GetFlag(FLAGS_workers), 0, kMaxProcesses,
//                  "0 = one per CPU core", &problems);
//   if (!problems.empty()) return ReportFlagProblems("run", problems);
//
// A value that is not a number at all ("--workers=abc") is caught before
// Abseil's parser sees it (which would exit 1 with its own "Illegal value"):
// tools/main.cc runs CheckFlagSyntax once, before any command starts.
//
//   fedsim run: --workers: 'abc' is not a whole number
//
// Thread safety: free functions without shared state.
#ifndef FEDSIM_TOOLS_FLAG_CHECKS_H_
#define FEDSIM_TOOLS_FLAG_CHECKS_H_

#include <cstdint>
#include <cstdio>
#include <string>

#include "util/problems.h"

namespace fedsim {

// The exit code of a usage error, as for a wrong argument count.
inline constexpr int kUsageExitCode = 2;

// The most processes or threads a count flag (--workers, --slots,
// --parallel, --eval_threads) takes on one machine: far above its cores, low
// enough that a typo does not start a hundred thousand processes.
inline constexpr int64_t kMaxProcesses = 1024;

// Adds "must be from <lo> to <hi>, got <value>; <hint>" under "--<flag>"
// unless lo <= value <= hi. REQUIRES: lo <= hi.
void CheckFlagRange(const std::string& flag, int64_t value, int64_t lo, int64_t hi,
                    const std::string& hint, ProblemList* problems);

// Adds "must be > 0, got <value>; <hint>" under "--<flag>" unless `value` is
// a finite number of seconds > 0 (util/checks.h CheckPositive).
void CheckFlagSeconds(const std::string& flag, double value, const std::string& hint,
                      ProblemList* problems);

// Adds ParseHostPort's message (rpc/auth.h: "address 'x' is not HOST:PORT:
// no port") under "--<flag>" unless `value` is HOST:PORT; "is required: <hint>"
// when it is empty.
void CheckFlagAddress(const std::string& flag, const std::string& value, const std::string& hint,
                      ProblemList* problems);

// Adds "'<value>' is not a whole number" (or "a number", or the parser's own
// reason) under "--<flag>" for each --flag=value or --flag value in
// argv[1..argc) that the flag's own parser refuses. Flags are left as they
// were. Unknown flags, booleans and everything after "--" are left to
// absl::ParseCommandLine.
void CheckFlagSyntax(int argc, char** argv, ProblemList* problems);

// Prints each problem as "fedsim <command>: <path>: <message>" to `out`, and
// a pointer to --help, and returns kUsageExitCode.
// REQUIRES: !problems.empty().
int ReportFlagProblems(const std::string& command, const ProblemList& problems, FILE* out = stderr);

}  // namespace fedsim

#endif  // FEDSIM_TOOLS_FLAG_CHECKS_H_
