#include "algorithms/registry.h"

#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "algorithms/fed_au.h"
#include "algorithms/rules.h"
#include "util/spell.h"

namespace fedsim {
namespace {

// One row per rule; `name` is the field name in config.Algorithm's oneof.
// The first row is the default rule (DefaultAlgorithm).
constexpr AlgorithmEntry kAlgorithms[] = {
    {"fedavg", "synchronous FedAvg: m clients per round, optional deadline and over-selection",
     config::Algorithm::kFedavg, &ValidateFedAvg, nullptr, nullptr, &NewFedAvg},
    {"fedasync", "FedAsync: mix each arrival into the model with alpha * S(staleness)",
     config::Algorithm::kFedasync, &ValidateFedAsync, &FillFedAsyncDefaults, nullptr, &NewFedAsync},
    {"fedbuff", "FedBuff: buffer K staleness-weighted updates, then commit",
     config::Algorithm::kFedbuff, &ValidateFedBuff, &FillFedBuffDefaults, nullptr, &NewFedBuff},
    {"fedfix", "FedFix-Delta: commit every Delta seconds, weights ceil(tau/Delta) p_i",
     config::Algorithm::kFedfix, &ValidateFedFix, nullptr, nullptr, &NewFedFix},
    {"async_fedavg", "asynchronous FedAvg (Fraboni): commit each arrival, identical or weight",
     config::Algorithm::kAsyncFedavg, &ValidateAsyncFedAvg, nullptr, nullptr, &NewAsyncFedAvg},
    {"fedau", "FedAU and its baselines: rounds decided by client participation processes",
     config::Algorithm::kFedau, &ValidateFedAu, nullptr, &FedAuStateBytes, &NewFedAu},
    {"fedopt", "FedOpt: FedAvg rounds with a server optimizer (Adam, Yogi, Adagrad, momentum)",
     config::Algorithm::kFedopt, &ValidateFedOpt, &FillFedOptDefaults, &FedOptStateBytes,
     &NewFedOpt},
    {"decentralized",
     "decentralized gossip without a server model: D-PSGD, DFedAvg(M), DFedSAM, DFedSAM-MGS",
     config::Algorithm::kDecentralized, &ValidateDecentralized, &FillDecentralizedDefaults,
     &DecentralizedStateBytes, &NewDecentralized, &DecentralizedNotes},
};

std::vector<std::string_view> Names() {
  std::vector<std::string_view> names;
  for (const AlgorithmEntry& e : kAlgorithms) names.push_back(e.name);
  return names;
}

std::string KnownNames() {
  std::vector<std::string> names;
  for (const AlgorithmEntry& e : kAlgorithms) names.emplace_back(e.name);
  return absl::StrJoin(names, ", ");
}

}  // namespace

std::span<const AlgorithmEntry> RegisteredAlgorithms() { return kAlgorithms; }

const AlgorithmEntry& DefaultAlgorithm() { return kAlgorithms[0]; }

absl::StatusOr<const AlgorithmEntry*> FindAlgorithm(std::string_view name) {
  for (const AlgorithmEntry& e : kAlgorithms) {
    if (e.name == name) return &e;
  }
  const std::vector<std::string_view> names = Names();
  return absl::NotFoundError(absl::StrCat("unknown algorithm '", std::string(name), "'",
                                          DidYouMean(name, names), "; known: ", KnownNames()));
}

absl::StatusOr<const AlgorithmEntry*> EntryFor(const config::Algorithm& config) {
  if (config.rule_case() == config::Algorithm::RULE_NOT_SET) {
    return absl::InvalidArgumentError(
        absl::StrCat("algorithm: no rule set; choose one of ", KnownNames()));
  }
  for (const AlgorithmEntry& e : kAlgorithms) {
    if (e.rule == config.rule_case()) return &e;
  }
  const auto* field = config::Algorithm::descriptor()->FindFieldByNumber(config.rule_case());
  return absl::InvalidArgumentError(
      absl::StrCat("algorithm.", field != nullptr ? field->name() : std::string("?"),
                   " is not implemented in this build; choose one of ", KnownNames()));
}

absl::StatusOr<std::unique_ptr<Algorithm>> NewAlgorithm(const config::Algorithm& config,
                                                        const AlgorithmContext& context) {
  absl::StatusOr<const AlgorithmEntry*> entry = EntryFor(config);
  if (!entry.ok()) return entry.status();
  return (*entry)->factory(config, context);
}

}  // namespace fedsim
