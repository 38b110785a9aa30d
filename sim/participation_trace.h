// Availability windows for trace-driven participation (sim/participation.h):
// the trace CSV reader and the window merging that ParticipationModel's trace
// processes (from a CSV or from recorded windows) share.
//
// Thread safety: pure functions.
#ifndef FEDSIM_SIM_PARTICIPATION_TRACE_H_
#define FEDSIM_SIM_PARTICIPATION_TRACE_H_

#include <cstddef>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"

namespace fedsim {

// Per client, [start, end) windows in virtual seconds.
using TraceWindows = std::vector<std::vector<std::pair<double, double>>>;

// `path` resolved against `dir` (the scenario's folder) unless it is absolute
// or `dir` is empty.
std::string ResolveTracePath(const std::string& path, const std::string& dir);

// Sorts each client's windows and merges overlapping and touching ones, so
// that every boundary left is an actual change of state.
void MergeWindows(TraceWindows& windows);

// Reads the trace CSV at `path` for `num_clients` clients, merged (see
// MergeWindows). The file is read by util/csv.h ('#' comments, blank lines,
// CRLF line ends and a leading UTF-8 byte-order mark are accepted) with the
// header `client,start_s,end_s`. Clients not listed get no window.
// NotFound "participation.trace.csv: cannot read <path>: <reason>" for a file
// that cannot be read; InvalidArgument "<path>:<line>: <what>" for a wrong
// header or field count, a client that is not an integer in
// [0, num_clients), a start or end that is not a finite number, a negative
// start, or end <= start.
absl::StatusOr<TraceWindows> ReadTraceCsv(const std::string& path, size_t num_clients);

}  // namespace fedsim

#endif  // FEDSIM_SIM_PARTICIPATION_TRACE_H_
