// Helpers shared by the config/ tests: a minimal valid scenario and the
// whole loading pipeline on text named "x.textproto".
#ifndef FEDSIM_CONFIG_SCENARIO_TEST_UTIL_H_
#define FEDSIM_CONFIG_SCENARIO_TEST_UTIL_H_

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/str_split.h"
#include "config/scenario_file.h"

namespace fedsim {

// A valid minimal scenario: defaults do the rest.
inline constexpr char kMinimal[] = R"(num_clients: 20
stop { max_commits: 3 }
)";

inline std::string Msg(const absl::Status& s) { return std::string(s.message()); }

inline std::vector<std::string> ErrorLines(const absl::Status& s) {
  return absl::StrSplit(std::string(s.message()), '\n');
}

inline absl::StatusOr<config::Scenario> Parse(const std::string& text,
                                              const std::vector<std::string>& overrides = {}) {
  return ParseScenarioText(text, "x.textproto", overrides);
}

}  // namespace fedsim

#endif  // FEDSIM_CONFIG_SCENARIO_TEST_UTIL_H_
