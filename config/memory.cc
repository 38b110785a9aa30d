#include "config/memory.h"

#include <cmath>
#include <cstdio>
#include <limits>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "algorithms/registry.h"
#include "config/model_config.h"
#include "util/status_macros.h"

namespace fedsim {
namespace {

constexpr uint64_t kMax = std::numeric_limits<uint64_t>::max();
constexpr uint64_t kBytesPerParam = sizeof(float);
constexpr double kMegabyte = 1e6;

uint64_t SaturatingMul(uint64_t a, uint64_t b) {
  if (a != 0 && b > kMax / a) return kMax;
  return a * b;
}

// "<count> x <params> params x 4 B = <size>", factoring bytes as clients x
// params or model copies x params when it is one of those, else just the size.
std::string Breakdown(uint64_t bytes, uint64_t num_clients, uint64_t num_params) {
  const uint64_t per_copy = SaturatingMul(num_params, kBytesPerParam);
  const std::string params = absl::StrCat(FormatCount(num_params), " params x ", kBytesPerParam,
                                          " B = ", FormatBytes(bytes));
  if (bytes == 0) return "none beyond the model";
  if (per_copy > 0 && bytes != kMax && bytes % per_copy == 0) {
    const uint64_t copies = bytes / per_copy;
    if (copies == num_clients) return absl::StrCat(FormatCount(num_clients), " clients x ", params);
    return absl::StrCat(FormatCount(copies), copies == 1 ? " model copy x " : " model copies x ",
                        params);
  }
  if (num_clients > 0 && bytes != kMax && bytes % num_clients == 0) {
    return absl::StrCat(FormatCount(num_clients), " clients x ", FormatCount(bytes / num_clients),
                        " B = ", FormatBytes(bytes));
  }
  return FormatBytes(bytes);
}

}  // namespace

uint64_t MemoryEstimate::total_bytes() const {
  return rule_bytes > kMax - engine_bytes ? kMax : rule_bytes + engine_bytes;
}

std::string FormatCount(uint64_t n) {
  std::string digits = absl::StrCat(n);
  std::string out;
  for (size_t i = 0; i < digits.size(); ++i) {
    if (i > 0 && (digits.size() - i) % 3 == 0) out += ',';
    out += digits[i];
  }
  return out;
}

std::string FormatBytes(uint64_t bytes) {
  if (bytes < 1000) return absl::StrCat(bytes, " B");
  const double mb = static_cast<double>(bytes) / kMegabyte;
  if (mb >= 10) return absl::StrCat(FormatCount(static_cast<uint64_t>(std::llround(mb))), " MB");
  char buf[32];
  std::snprintf(buf, sizeof(buf), "%.3g MB", mb);
  return buf;
}

absl::StatusOr<MemoryEstimate> EstimateMemory(const config::Scenario& scenario) {
  FEDSIM_ASSIGN_OR_RETURN(ModelConfig model, ModelConfigForScenario(scenario));
  FEDSIM_ASSIGN_OR_RETURN(size_t num_params, ModelParamsForScenario(scenario));
  FEDSIM_ASSIGN_OR_RETURN(const AlgorithmEntry* entry, EntryFor(scenario.algorithm()));
  MemoryEstimate e;
  e.model = model.ToString();
  e.num_clients = scenario.num_clients();
  e.num_params = num_params;
  if (entry->state_bytes != nullptr) {
    e.rule_bytes = entry->state_bytes(scenario.algorithm(), e.num_clients, e.num_params);
  }
  e.engine_bytes = SaturatingMul(kEngineModelCopies, SaturatingMul(num_params, kBytesPerParam));
  e.budget_bytes = SaturatingMul(scenario.limits().memory_budget_mb(), 1'000'000);
  return e;
}

std::vector<std::string> DescribeMemory(const MemoryEstimate& e) {
  std::vector<std::string> lines;
  lines.push_back(absl::StrCat("model: ", e.model, ", ", FormatCount(e.num_params), " params"));
  lines.push_back(
      absl::StrCat("algorithm state: ", Breakdown(e.rule_bytes, e.num_clients, e.num_params)));
  lines.push_back(absl::StrCat("engine: ", Breakdown(e.engine_bytes, e.num_clients, e.num_params)));
  lines.push_back(absl::StrCat("total: ", FormatBytes(e.total_bytes()),
                               e.budget_bytes == 0
                                   ? std::string(" (no budget: limits.memory_budget_mb is 0)")
                                   : absl::StrCat(" of the ", FormatBytes(e.budget_bytes),
                                                  " budget (limits.memory_budget_mb)")));
  return lines;
}

void CheckMemoryBudget(const config::Scenario& scenario, ProblemList* problems) {
  absl::StatusOr<MemoryEstimate> e = EstimateMemory(scenario);
  if (!e.ok() || e->budget_bytes == 0 || e->total_bytes() <= e->budget_bytes) return;
  const uint64_t needed_mb =
      static_cast<uint64_t>(std::ceil(static_cast<double>(e->total_bytes()) / kMegabyte));
  problems->Add(
      "limits.memory_budget_mb",
      absl::StrCat("the run needs about ", FormatBytes(e->total_bytes()),
                   " of server memory (algorithm state: ",
                   Breakdown(e->rule_bytes, e->num_clients, e->num_params),
                   "; engine: ", Breakdown(e->engine_bytes, e->num_clients, e->num_params),
                   "), more than the budget of ", FormatBytes(e->budget_bytes),
                   "; raise limits.memory_budget_mb to at least ", needed_mb,
                   " if the server has that memory, or lower num_clients or the model size"));
}

}  // namespace fedsim
