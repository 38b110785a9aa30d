// Fuzz target: --set overrides (config/overrides.h) on the minimal valid
// scenario of the config tests (config/scenario_test_util.h), then defaults
// and validation. Each input line is one --set value as the shell would pass
// it; the lines also go through JoinOverrideFragments as comma-split
// fragments, the way absl's vector flag delivers them.
// Corpus: tests/fuzz/overrides/.
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/str_split.h"
#include "config/overrides.h"
#include "config/scenario_file.h"
#include "config/scenario_test_util.h"
#include "tests/fuzz/fuzz_util.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string text = fedsim::fuzz::AsString(data, size);
  const std::vector<std::string> lines = absl::StrSplit(text, '\n');
  absl::StatusOr<fedsim::config::Scenario> s =
      fedsim::ParseScenarioText(fedsim::kMinimal, "base.textproto", lines);
  if (s.ok()) {
    // What loaded must survive its own canonical text.
    absl::StatusOr<fedsim::config::Scenario> again =
        fedsim::ParseScenarioText(fedsim::ScenarioToText(*s), "canonical.textproto", {});
    FUZZ_CHECK(again.ok());
    FUZZ_CHECK(fedsim::ScenarioHash(*again) == fedsim::ScenarioHash(*s));
  } else {
    FUZZ_CHECK(!s.status().message().empty());
  }
  std::vector<std::string> fragments;
  for (const std::string& line : lines) {
    for (absl::string_view f : absl::StrSplit(line, ',')) fragments.emplace_back(f);
  }
  const std::vector<std::string> joined = fedsim::JoinOverrideFragments(fragments);
  FUZZ_CHECK(joined.size() <= fragments.size());
  fedsim::config::Scenario scenario;
  fedsim::ApplyOverrides(joined, &scenario, nullptr).IgnoreError();
  return 0;
}
