#include "config/scenario_file.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "config/defaults.h"
#include "config/diagnostics.h"
#include "config/overrides.h"
#include "config/validate.h"
#include "google/protobuf/text_format.h"
#include "util/file.h"
#include "util/hash.h"
#include "util/status_macros.h"

namespace fedsim {
namespace {

namespace pb = google::protobuf;

// A scenario is a page of text; anything this large is the wrong file.
constexpr uint64_t kMaxScenarioFileBytes = uint64_t{16} << 20;

std::string FileStem(const std::string& path) {
  size_t slash = path.find_last_of('/');
  std::string base = slash == std::string::npos ? path : path.substr(slash + 1);
  size_t dot = base.find('.');
  if (dot != std::string::npos && dot > 0) base = base.substr(0, dot);
  for (char& c : base) {
    if (!ValidScenarioNameChar(c)) c = '_';
  }
  if (base.empty() || base == "." || base == "..") base = "scenario";
  return base;
}

}  // namespace

absl::StatusOr<ParsedScenario> ParseScenarioSyntax(const std::string& text,
                                                   const std::string& display_name) {
  ParsedScenario out;
  absl::Status s = ParseTextWithSources(text, display_name, &out.scenario, &out.sources);
  if (!s.ok()) return s;
  return out;
}

absl::StatusOr<config::Scenario> ParseScenarioText(const std::string& text,
                                                   const std::string& display_name,
                                                   const std::vector<std::string>& overrides,
                                                   SourceMap* sources_out) {
  absl::StatusOr<ParsedScenario> parsed = ParseScenarioSyntax(text, display_name);
  if (!parsed.ok()) return parsed.status();
  config::Scenario scenario = std::move(parsed->scenario);
  SourceMap sources = std::move(parsed->sources);
  if (absl::Status s = ApplyOverrides(overrides, &scenario, &sources); !s.ok()) return s;
  if (!scenario.has_name() || scenario.name().empty()) {
    scenario.set_name(display_name.empty() ? std::string("scenario") : FileStem(display_name));
  }
  FillDefaults(&scenario);
  if (absl::Status s = ValidateScenario(scenario, &sources); !s.ok()) return s;
  if (sources_out != nullptr) *sources_out = std::move(sources);
  return scenario;
}

absl::StatusOr<config::Scenario> LoadScenario(const std::string& path,
                                              const std::vector<std::string>& overrides) {
  FEDSIM_ASSIGN_OR_RETURN(
      const std::string text,
      ReadFileToString(path, {.what = "the scenario file", .max_bytes = kMaxScenarioFileBytes}));
  // Said here, before the defaults fill in: an empty file would otherwise be
  // reported as "stop has no condition", which sends the user looking for
  // the wrong mistake.
  if (IsBlankText(text)) {
    return absl::InvalidArgumentError(absl::StrCat(
        path, ": the scenario file is empty", text.empty() ? "" : " (only blanks and comments)",
        "; a scenario sets at least stop { max_commits: N } (see scenarios/quickstart.textproto)"));
  }
  return ParseScenarioText(text, path, overrides);
}

std::string ScenarioToText(const config::Scenario& scenario) {
  pb::TextFormat::Printer printer;
  std::string out;
  printer.PrintToString(scenario, &out);
  return out;
}

std::string ScenarioHash(const config::Scenario& scenario) {
  return Sha256Hex(ScenarioToText(scenario));
}

std::string ScenarioDir(const std::string& path) {
  size_t slash = path.find_last_of('/');
  if (slash == std::string::npos) return ".";
  if (slash == 0) return "/";
  return path.substr(0, slash);
}

}  // namespace fedsim
