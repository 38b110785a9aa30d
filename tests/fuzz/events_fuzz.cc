// Fuzz target: the events.jsonl reader of replay (sim/replay.h): the whole
// file through ReadEventLog (CRLF, byte-order mark, empty lines), each line
// through ParseEventLine, and the file as a recorded schedule (sim/schedule.h
// LoadSchedule with `events`, 16 clients). Corpus: tests/fuzz/events/.
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/str_split.h"
#include "proto/scenario.pb.h"
#include "sim/replay.h"
#include "sim/schedule.h"
#include "tests/fuzz/fuzz_util.h"

namespace {

void CheckEvent(const fedsim::RecordedEvent& e) {
  FUZZ_CHECK(!e.kind.empty());
  FUZZ_CHECK(e.text.find('\n') == std::string::npos);
  if (e.kind == "dispatch") FUZZ_CHECK(std::isfinite(e.duration) && e.duration >= 0);
  if (e.kind == "avail") FUZZ_CHECK(std::isfinite(e.time) && e.time >= 0);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string text = fedsim::fuzz::AsString(data, size);
  {
    fedsim::fuzz::MemFile file(text);
    absl::StatusOr<std::vector<fedsim::RecordedEvent>> log = fedsim::ReadEventLog(file.path());
    if (log.ok()) {
      FUZZ_CHECK(!log->empty());
      for (const fedsim::RecordedEvent& e : *log) CheckEvent(e);
    }
    fedsim::config::Schedule config;
    config.set_events(file.path());
    absl::StatusOr<fedsim::TraceSchedule> schedule = fedsim::LoadSchedule(config, 16, "");
    if (schedule.ok()) FUZZ_CHECK(schedule->durations.size() == 16);
  }
  for (absl::string_view line : absl::StrSplit(text, '\n')) {
    absl::StatusOr<fedsim::RecordedEvent> e = fedsim::ParseEventLine(std::string(line));
    if (e.ok()) CheckEvent(*e);
  }
  return 0;
}
