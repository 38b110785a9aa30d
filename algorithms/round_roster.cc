#include "algorithms/round_roster.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <string>
#include <utility>

#include "absl/strings/str_cat.h"
#include "algorithms/rule_util.h"

namespace fedsim {

void RoundRoster::Begin(Version version, std::span<const Dispatch> cohort) {
  active_ = true;
  version_ = version;
  outstanding_.clear();
  outstanding_.reserve(cohort.size());
  for (const Dispatch& d : cohort) outstanding_.push_back(d.client);
  std::sort(outstanding_.begin(), outstanding_.end());
}

void RoundRoster::End() {
  active_ = false;
  outstanding_.clear();
}

absl::Status RoundRoster::Admit(const ClientUpdate& update) {
  if (!active_ || update.base.version != version_) {
    return absl::FailedPreconditionError(
        absl::StrCat("late for round: task ", update.task_id, " trained on version ",
                     update.base.version, ", the round in progress is ",
                     active_ ? absl::StrCat("on version ", version_) : std::string("none")));
  }
  auto it = std::lower_bound(outstanding_.begin(), outstanding_.end(), update.client);
  if (it == outstanding_.end() || *it != update.client) {
    return absl::FailedPreconditionError(
        absl::StrCat("late for round: client ", update.client, " is not expected in it"));
  }
  outstanding_.erase(it);
  return absl::OkStatus();
}

void RoundRoster::Forget(ClientId client) {
  auto it = std::lower_bound(outstanding_.begin(), outstanding_.end(), client);
  if (it != outstanding_.end() && *it == client) outstanding_.erase(it);
}

void RoundRoster::Save(AlgorithmState* out, const std::string& rule) const {
  PutScalar(out, absl::StrCat(rule, ".round_active"), active_ ? 1 : 0);
  PutScalar(out, absl::StrCat(rule, ".round_version"), static_cast<double>(version_));
  PutScalars(out, absl::StrCat(rule, ".outstanding"),
             std::vector<double>(outstanding_.begin(), outstanding_.end()));
}

absl::Status RoundRoster::Load(const AlgorithmState& in, const std::string& rule) {
  absl::StatusOr<uint64_t> active = GetCount(in, absl::StrCat(rule, ".round_active"));
  absl::StatusOr<uint64_t> version = GetCount(in, absl::StrCat(rule, ".round_version"));
  absl::StatusOr<std::vector<double>> clients = GetScalars(in, absl::StrCat(rule, ".outstanding"));
  for (const absl::Status& s : {active.status(), version.status(), clients.status()}) {
    if (!s.ok()) return s;
  }
  if (*active > 1) {
    return absl::InvalidArgumentError(absl::StrCat(
        rule, ": inconsistent round state in checkpoint (round_active ", *active, ")"));
  }
  std::vector<ClientId> outstanding;
  outstanding.reserve(clients->size());
  for (double c : *clients) {
    if (!(c >= 0) || c > UINT32_MAX || c != std::floor(c)) {
      return absl::InvalidArgumentError(absl::StrCat(rule, ": bad client id in checkpoint"));
    }
    const ClientId id = static_cast<ClientId>(c);
    if (!outstanding.empty() && id <= outstanding.back()) {
      return absl::InvalidArgumentError(absl::StrCat(
          rule, ": inconsistent round state in checkpoint (outstanding clients not ascending)"));
    }
    outstanding.push_back(id);
  }
  active_ = *active == 1;
  version_ = *version;
  outstanding_ = std::move(outstanding);
  return absl::OkStatus();
}

}  // namespace fedsim
