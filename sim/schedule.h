// Trace-driven scenarios: task durations (and availability) from a recorded
// schedule instead of the device and participation models, so that a fleet
// recorded once can be run through other aggregation rules ("what would
// FedBuff have done on this exact fleet?"). The scenario's `schedule` message
// (proto/scenario.proto) documents the semantics; in short:
//
//  - Durations: client i's k-th task in the new run takes client i's k-th
//    recorded duration, cycling (k mod n_i) when the new rule dispatches it
//    more often than the recording did. A client with no recorded task takes
//    the device model's duration (ScheduleCursor::Next returns nullopt).
//  - Availability (events.jsonl only): "avail" lines become per-client
//    [start, end) windows (ParticipationModel::FromWindows). A client's state
//    before its first recorded change is the opposite of that change (the
//    engine logs only actual changes). A client without changes is always
//    available if the recording dispatched it; otherwise its state is left
//    open (TraceSchedule::open_availability). A log without "avail" lines
//    gives no windows.
//
// Keying by (client, k) rather than by task id is what makes a schedule
// portable across rules: task ids are global dispatch counters and mean
// nothing under another rule, while "client i's k-th task" does. Running the
// recording's own rule on its own schedule dispatches the same clients in the
// same order, so it reproduces the recording bit for bit.
//
//   absl::StatusOr<TraceSchedule> s = LoadSchedule(scenario.schedule(), n, dir);
//   ScheduleCursor cursor(&*s);          // one per run
//   engine_config.duration_override = [&](TaskId, ClientId c) { return cursor.Next(c); };
//
// Thread safety: LoadSchedule is a pure function. A TraceSchedule is immutable
// after loading and may be shared. A ScheduleCursor is not thread-safe; it
// belongs to one run and is called only from its engine thread (the engine
// calls duration_override exactly once per dispatch, in dispatch order).
#ifndef FEDSIM_SIM_SCHEDULE_H_
#define FEDSIM_SIM_SCHEDULE_H_

#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "algorithms/types.h"
#include "proto/scenario.pb.h"

namespace fedsim {

// A loaded schedule. Immutable after LoadSchedule.
struct TraceSchedule {
  // The file it came from (resolved path), for messages.
  std::string source;
  // Per client (num_clients rows): its recorded task durations, in the order
  // the recording dispatched them. An empty row = no recorded task.
  std::vector<std::vector<double>> durations;
  // Per client: availability windows [start, end) (end may be +infinity),
  // sorted and disjoint. Unset when the schedule has no availability (a
  // durations CSV, or a log without "avail" lines).
  std::optional<std::vector<std::vector<std::pair<double, double>>>> windows;
  // With windows: the clients whose availability the log leaves open (no
  // avail line and no dispatch; e.g. off during the whole recording, or on
  // but never picked). Their rows in `windows` are empty; PrepareRun makes
  // each available for the whole run iff the scenario's participation process
  // has it available at time 0 (exact when the scenario has the recording's
  // participation, the intended use).
  std::vector<ClientId> open_availability;

  // The clients with no recorded task, ascending.
  std::vector<ClientId> ClientsWithoutDurations() const;
};

// Reads the file `config` names. The durations CSV, header
// `client,task_index,duration_s`, is read by util/csv.h ('#' comment lines,
// blank lines, CRLF line ends and a leading UTF-8 byte-order mark are
// accepted). Relative paths are resolved against
// `scenario_dir` first and, when nothing is there, against the working
// directory; `events` may name a run folder (its events.jsonl is read).
// Errors, all before anything runs:
//  - NotFound "schedule.events: cannot read <path> ..." (both paths tried;
//    likewise "schedule.durations_csv: ...").
//  - DataLoss "<path>:<line>: ..." for a line of events.jsonl that does not
//    parse (sim/replay.h ParseEventLine).
//  - InvalidArgument "<path>:<line>: ..." for a client id outside
//    [0, num_clients), an avail line earlier in time than the one before,
//    and, in the CSV, a wrong header, a wrong number of fields, a
//    non-integer client or task_index, a duration that is not a finite
//    number >= 0, or a repeated (client, task_index); "<path>: client c has
//    no task_index k ..." when a client's indices are not 0..n-1.
//  - InvalidArgument when neither or both of events / durations_csv are set.
// REQUIRES: num_clients > 0.
absl::StatusOr<TraceSchedule> LoadSchedule(const config::Schedule& config, size_t num_clients,
                                           const std::string& scenario_dir);

// One run's position in a schedule: how many tasks each client has started.
// Not thread-safe; called only from the engine thread.
class ScheduleCursor {
 public:
  // `schedule` must outlive the cursor.
  explicit ScheduleCursor(const TraceSchedule* schedule);

  // The duration of client `client`'s next task (its k-th call gives
  // durations[client][k mod n]), or nullopt when the schedule has no task of
  // that client (the caller falls back to the device model).
  // REQUIRES: client < schedule->durations.size().
  std::optional<double> Next(ClientId client);

  // Dispatches that found no recorded duration so far.
  uint64_t fallbacks() const { return fallbacks_; }
  // Dispatches that reused a recorded duration (k >= n_i) so far.
  uint64_t cycled() const { return cycled_; }

 private:
  const TraceSchedule* schedule_;
  std::vector<uint64_t> next_;
  uint64_t fallbacks_ = 0;
  uint64_t cycled_ = 0;
};

}  // namespace fedsim

#endif  // FEDSIM_SIM_SCHEDULE_H_
