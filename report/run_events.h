// A run's events.jsonl (sim/run_output.h) read for the report: every task
// from dispatch to arrival (or loss), the staleness of every applied update,
// and when each client was dispatched.
//
// Thread safety: pure functions; the structs are values.
#ifndef FEDSIM_REPORT_RUN_EVENTS_H_
#define FEDSIM_REPORT_RUN_EVENTS_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace fedsim {

struct TaskSpan {
  enum class Kind {
    kAccepted,  // arrived and the rule took it
    kRefused,   // arrived and the rule dropped it (too stale, past a deadline, ...)
    kLost,      // never arrived (the client dropped out, its worker died)
    kInFlight,  // still running when the run ended
  };
  uint64_t task = 0;
  uint32_t client = 0;
  double start = 0;
  double end = 0;  // arrival, loss, or the run's end for kInFlight
  Kind kind = Kind::kInFlight;
};

struct RunEvents {
  std::vector<TaskSpan> tasks;      // in dispatch order
  std::vector<uint64_t> staleness;  // of every applied update, in commit order
  double end_time = 0;              // the last event's virtual time
  uint32_t max_client = 0;          // the largest client id seen
};

// Parses events.jsonl text. Lines of kinds it does not use are skipped, and
// so are blank ones; Windows line ends and a byte-order mark read the same
// (util/file.h TextLines). InvalidArgument "<name>:<line>: ..." for a line
// that is not JSON.
absl::StatusOr<RunEvents> ParseRunEvents(const std::string& text, const std::string& name);
absl::StatusOr<RunEvents> ReadRunEvents(const std::string& path);

}  // namespace fedsim

#endif  // FEDSIM_REPORT_RUN_EVENTS_H_
