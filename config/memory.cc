#include "config/memory.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <limits>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "algorithms/registry.h"
#include "config/model_config.h"
#include "data/synthetic.h"
#include "runtime/run_setup.h"
#include "runtime/task_runner.h"
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

uint64_t SaturatingAdd(uint64_t a, uint64_t b) { return a > kMax - b ? kMax : a + b; }

// What the participation process keeps per client beyond p_i (counted in
// kBytesPerClient): its parameters, and for processes that change over time
// the change stream's cursor (state, round, chain state: 10 B).
uint64_t ParticipationBytesPerClient(const config::Participation& p) {
  const uint64_t stream = p.round_s() > 0 ? 10 : 0;
  switch (p.process_case()) {
    case config::Participation::kBernoulli:
      return stream;
    case config::Participation::kMarkov:
      return 16 + 48 + stream;  // a_i, b_i and the chain cache
    case config::Participation::kCyclic:
      return 12 + stream;  // on_i, off_i, phase
    case config::Participation::kTrace:
      return 24 + 16 + 10;  // a window list with one window, the stream
    default:
      return 0;
  }
}

// Rows held in memory and what to change to hold fewer.
void EstimateData(const config::Scenario& s, MemoryEstimate* e) {
  const uint64_t n = s.num_clients();
  if (s.dataset().has_synthetic()) {
    const SyntheticOptions o = SyntheticOptionsFromConfig(s.dataset().synthetic());
    const uint64_t row_bytes = static_cast<uint64_t>(o.num_features) * sizeof(float) + 4;
    const double mean = SyntheticMeanClientSize(o);
    if (s.partition().has_natural()) {
      // Clients are generated when they train: only the evaluated test rows
      // and the trainer's cache stay. A client keeps n - floor(0.9 n) rows
      // for testing: 0.1 n + 0.45 on average for drawn sizes.
      const double per_client = o.examples_per_client > 0
                                    ? static_cast<double>(o.examples_per_client -
                                                          SyntheticTrainCount(o.examples_per_client))
                                    : 0.1 * mean + 0.45;
      const double all = per_client * static_cast<double>(n);
      const uint64_t limit = s.eval().test_limit();
      const uint64_t rows =
          static_cast<uint64_t>(std::min(limit > 0 ? static_cast<double>(limit) : all, all));
      const uint64_t test_bytes = SaturatingMul(rows, row_bytes);
      const uint64_t cache = ClientCacheBytes(s.limits().memory_budget_mb());
      e->data_bytes = SaturatingAdd(test_bytes, cache);
      e->data_detail = absl::StrCat("Synthetic test set: ", FormatCount(rows), " rows x ",
                                    row_bytes, " B = ", FormatBytes(test_bytes), ", ",
                                    FormatBytes(cache),
                                    " cache of generated clients");
      if (limit == 0) e->data_hint = "set eval.test_limit";
      return;
    }
    // Every row is held so that it can be partitioned (4 B of row index).
    const double rows = mean * static_cast<double>(n);
    const uint64_t r = rows >= 1.8e19 ? kMax : static_cast<uint64_t>(rows);
    e->data_bytes = SaturatingMul(r, row_bytes + 4);
    e->data_detail = absl::StrCat("Synthetic, every row held to be partitioned: about ",
                                  FormatCount(r), " rows x ", row_bytes + 4, " B = ",
                                  FormatBytes(e->data_bytes));
    e->data_hint =
        "use partition natural (clients generated when they train) or a small "
        "dataset.synthetic.examples_per_client";
    return;
  }
  const auto& fm = s.dataset().fashion_mnist();
  constexpr uint64_t kImageBytes = 28 * 28, kLabelBytes = 4, kIndexBytes = 4;
  const uint64_t train = fm.train_limit() > 0 ? std::min<uint64_t>(fm.train_limit(), 60000) : 60000;
  const uint64_t test = fm.test_limit() > 0 ? std::min<uint64_t>(fm.test_limit(), 10000) : 10000;
  // Rows, labels, each training row's index in its client's list, and each
  // client's list itself (24 B).
  e->data_bytes = SaturatingAdd(train * (kImageBytes + kLabelBytes + kIndexBytes) +
                                    test * (kImageBytes + kLabelBytes),
                                SaturatingMul(n, 24));
  e->data_detail = absl::StrCat("Fashion-MNIST: ", FormatCount(train), " training + ",
                                FormatCount(test), " test rows of ", kImageBytes,
                                " B and their index lists = ", FormatBytes(e->data_bytes));
}

std::string ClientLine(const MemoryEstimate& e) {
  return absl::StrCat(FormatCount(e.num_clients), " clients x ", e.bytes_per_client, " B = ",
                      FormatBytes(e.client_bytes));
}

}  // namespace

uint64_t MemoryEstimate::total_bytes() const {
  uint64_t total = 0;
  for (uint64_t part : {rule_bytes, engine_bytes, client_bytes, data_bytes}) {
    total = SaturatingAdd(total, part);
  }
  return total;
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
  e.bytes_per_client = kBytesPerClient + ParticipationBytesPerClient(scenario.participation());
  e.client_bytes = SaturatingMul(e.num_clients, e.bytes_per_client);
  EstimateData(scenario, &e);
  e.budget_bytes = SaturatingMul(scenario.limits().memory_budget_mb(), 1'000'000);
  return e;
}

std::vector<std::string> DescribeMemory(const MemoryEstimate& e) {
  std::vector<std::string> lines;
  lines.push_back(absl::StrCat("model: ", e.model, ", ", FormatCount(e.num_params), " params"));
  lines.push_back(
      absl::StrCat("algorithm state: ", Breakdown(e.rule_bytes, e.num_clients, e.num_params)));
  lines.push_back(absl::StrCat("engine: ", Breakdown(e.engine_bytes, e.num_clients, e.num_params)));
  lines.push_back(absl::StrCat("clients: ", ClientLine(e)));
  lines.push_back(absl::StrCat("data: ", e.data_detail));
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
                   " of memory (algorithm state: ",
                   Breakdown(e->rule_bytes, e->num_clients, e->num_params),
                   "; engine: ", Breakdown(e->engine_bytes, e->num_clients, e->num_params),
                   "; clients: ", ClientLine(*e), "; data: ", e->data_detail,
                   "), more than the budget of ", FormatBytes(e->budget_bytes),
                   "; raise limits.memory_budget_mb to at least ", needed_mb,
                   " if the machine has that memory, or lower num_clients or the model size",
                   e->data_hint.empty() ? "" : ", or ", e->data_hint));
}

}  // namespace fedsim
