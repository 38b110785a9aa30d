// Fuzz target: scenario text -> config::Scenario, the whole pipeline of
// config/scenario_file.h (parse, defaults, validation). Corpus:
// tests/fuzz/scenario/ (the shipped scenarios and a few broken ones).
//
// Invariant beyond "no crash": a scenario that loads prints as canonical
// text that loads again to the same scenario (same hash).
#include <cstddef>
#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "config/scenario_file.h"
#include "tests/fuzz/fuzz_util.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string text = fedsim::fuzz::AsString(data, size);
  absl::StatusOr<fedsim::config::Scenario> s =
      fedsim::ParseScenarioText(text, "fuzz.textproto", {});
  if (!s.ok()) {
    FUZZ_CHECK(!s.status().message().empty());
    return 0;
  }
  const std::string canonical = fedsim::ScenarioToText(*s);
  absl::StatusOr<fedsim::config::Scenario> again =
      fedsim::ParseScenarioText(canonical, "canonical.textproto", {});
  FUZZ_CHECK(again.ok());
  FUZZ_CHECK(fedsim::ScenarioHash(*again) == fedsim::ScenarioHash(*s));
  return 0;
}
