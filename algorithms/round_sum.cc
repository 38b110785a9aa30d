#include "algorithms/round_sum.h"

#include <algorithm>
#include <cmath>
#include <utility>

#include "absl/strings/str_cat.h"
#include "algorithms/rule_util.h"

namespace fedsim {

void RoundSum::SetUnitFromFleet(const FleetView& fleet) {
  uint64_t total = 0;
  for (size_t i = 0; i < fleet.num_clients(); ++i) {
    total += fleet.client(static_cast<ClientId>(i)).num_examples;
  }
  unit_ = total > 0 ? static_cast<double>(total) / static_cast<double>(fleet.num_clients()) : 1.0;
}

absl::Status RoundSum::Add(const ClientUpdate& update) {
  if (prefolded_.contains(update.task_id)) {
    // Its delta is in the sum already (a pre-aggregated sum merged earlier);
    // a copy that comes again after a resume carries the same delta.
    prefolded_.erase(update.task_id);
    Record(update);
    return absl::OkStatus();
  }
  if (update.folded != nullptr) return Merge(update);
  // The sum's own pass refuses NaN and infinities, so no separate scan
  // (CheckDelta) reads the update a second time.
  if (num_params_ != 0 && update.delta.size() != num_params_) {
    return absl::InvalidArgumentError(absl::StrCat("update of task ", update.task_id, " has ",
                                                   update.delta.size(), " values, want ",
                                                   num_params_));
  }
  // The round's first update overwrites what the last round left (Clear
  // keeps the memory and does not zero it).
  const double w = Weight(update.num_examples);
  if (absl::Status s = folded_.empty() ? sum_.Assign(w, update.delta) : sum_.Add(w, update.delta);
      !s.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("update of task ", update.task_id, ": ", s.message()));
  }
  Record(update);
  return absl::OkStatus();
}

absl::Status RoundSum::Merge(const ClientUpdate& update) {
  const FoldedSum& f = *update.folded;
  const std::span<const int64_t> values = f.values();
  const size_t n = values.size();
  auto bad = [&](const std::string& why) {
    return absl::InvalidArgumentError(
        absl::StrCat("pre-aggregated sum ", f.id, " with task ", update.task_id, ": ", why));
  };
  if (!std::binary_search(f.tasks.begin(), f.tasks.end(), update.task_id)) {
    return bad("the sum does not name this task");
  }
  if ((num_params_ != 0 && n != num_params_) || (!folded_.empty() && n != sum_.size())) {
    return bad(
        absl::StrCat("it has ", n, " values, want ", num_params_ != 0 ? num_params_ : sum_.size()));
  }
  for (const Folded& u : folded_) {
    if (std::binary_search(f.tasks.begin(), f.tasks.end(), u.task_id)) {
      return bad(absl::StrCat("it also holds task ", u.task_id, ", added already"));
    }
  }
  if (folded_.empty()) {
    sum_.CopyFrom(values);  // into the kept memory: no zeroing, no addition
  } else if (absl::Status s = sum_.Merge(values); !s.ok()) {
    return bad(std::string(s.message()));
  }
  for (TaskId t : f.tasks) {
    if (t != update.task_id) prefolded_.insert(t);
  }
  Record(update);
  return absl::OkStatus();
}

absl::Status RoundSum::CheckComplete(const char* rule) const {
  if (prefolded_.empty()) return absl::OkStatus();
  return absl::InternalError(
      absl::StrCat(rule, ": ", prefolded_.size(), " pre-aggregated tasks were not accepted"));
}

void RoundSum::Record(const ClientUpdate& update) {
  folded_.push_back(Folded{.task_id = update.task_id,
                           .client = update.client,
                           .staleness = update.staleness,
                           .num_examples = update.num_examples});
  examples_ += update.num_examples;
}

double RoundSum::total_weight() const {
  return uniform_ ? static_cast<double>(folded_.size()) : static_cast<double>(examples_) / unit_;
}

void RoundSum::AddMeanTo(double scale, std::span<float> model) const {
  const double total = total_weight();
  if (total > 0) sum_.AddScaledTo(scale / total, model);
}

void RoundSum::MeanInto(std::span<float> out) const {
  const double total = total_weight();
  if (total > 0) {
    sum_.ScaledInto(1.0 / total, out);
  } else {
    std::fill(out.begin(), out.end(), 0.0f);
  }
}

std::vector<AppliedUpdate> RoundSum::Applied(double scale) const {
  std::vector<Folded> sorted = folded_;
  std::sort(sorted.begin(), sorted.end(),
            [](const Folded& a, const Folded& b) { return a.task_id < b.task_id; });
  const double total = total_weight();
  std::vector<AppliedUpdate> applied;
  for (const Folded& u : sorted) {
    applied.push_back(
        AppliedUpdate{.task_id = u.task_id,
                      .client = u.client,
                      .staleness = u.staleness,
                      .weight = total > 0 ? scale * Weight(u.num_examples) / total : 0.0});
  }
  return applied;
}

void RoundSum::Clear() {
  folded_.clear();
  prefolded_.clear();
  examples_ = 0;
  // sum_ keeps its memory for the next round, whose first update overwrites
  // it; its values mean nothing while folded_ is empty.
}

void RoundSum::Save(AlgorithmState* out, const std::string& prefix) const {
  PutScalar(out, prefix + ".weight_unit", unit_);
  std::vector<double> folded;
  for (const Folded& u : folded_) {
    folded.insert(folded.end(),
                  {static_cast<double>(u.task_id), static_cast<double>(u.client),
                   static_cast<double>(u.staleness), static_cast<double>(u.num_examples)});
  }
  PutScalars(out, prefix + ".folded", std::move(folded));
  std::vector<double> high, low;
  if (!folded_.empty()) sum_.ToHalves(&high, &low);
  PutScalars(out, prefix + ".sum_high", std::move(high));
  PutScalars(out, prefix + ".sum_low", std::move(low));
  PutScalars(out, prefix + ".prefolded", std::vector<double>(prefolded_.begin(), prefolded_.end()));
}

absl::Status RoundSum::Load(const AlgorithmState& in, const std::string& prefix) {
  if (in.scalars.contains(prefix + ".accepted.meta")) {
    return absl::InvalidArgumentError(absl::StrCat(
        prefix,
        ": this checkpoint holds its round's updates one by one, as builds before the exact "
        "sum wrote them; continue it with the build that wrote it, or start the run anew"));
  }
  absl::StatusOr<double> unit = GetScalar(in, prefix + ".weight_unit");
  absl::StatusOr<std::vector<double>> folded = GetScalars(in, prefix + ".folded");
  absl::StatusOr<std::vector<double>> high = GetScalars(in, prefix + ".sum_high");
  absl::StatusOr<std::vector<double>> low = GetScalars(in, prefix + ".sum_low");
  for (const absl::Status& s : {unit.status(), folded.status(), high.status(), low.status()}) {
    if (!s.ok()) return s;
  }
  absl::StatusOr<std::vector<double>> prefolded_ids = GetScalars(in, prefix + ".prefolded");
  if (!prefolded_ids.ok()) return prefolded_ids.status();
  std::set<TaskId> prefolded;
  {
    for (double t : *prefolded_ids) {
      if (!(t >= 0) || t > 9007199254740992.0 || t != std::floor(t)) {
        return absl::InvalidArgumentError(
            absl::StrCat(prefix, ": bad prefolded task in checkpoint"));
      }
      prefolded.insert(static_cast<TaskId>(t));
    }
  }
  const size_t count = folded->size() / 4;
  const bool sized = count > 0 ? !high->empty() && (num_params_ == 0 || high->size() == num_params_)
                               : high->empty();
  if (folded->size() % 4 != 0 || !(*unit > 0) || !std::isfinite(*unit) || !sized) {
    return absl::InvalidArgumentError(
        absl::StrCat(prefix, ": inconsistent round sum in checkpoint"));
  }
  absl::StatusOr<ExactSum> sum = ExactSum::FromHalves(*high, *low);
  if (!sum.ok()) {
    return absl::InvalidArgumentError(absl::StrCat(prefix, ": ", sum.status().message()));
  }
  std::vector<Folded> records;
  uint64_t examples = 0;
  for (size_t k = 0; k < count; ++k) {
    const double* f = folded->data() + 4 * k;
    for (int i = 0; i < 4; ++i) {
      if (!(f[i] >= 0) || f[i] > 9007199254740992.0 || f[i] != std::floor(f[i]) ||
          (i == 1 && f[i] > UINT32_MAX)) {
        return absl::InvalidArgumentError(
            absl::StrCat(prefix, ": bad folded update in checkpoint"));
      }
    }
    records.push_back(Folded{.task_id = static_cast<TaskId>(f[0]),
                             .client = static_cast<ClientId>(f[1]),
                             .staleness = static_cast<uint64_t>(f[2]),
                             .num_examples = static_cast<uint64_t>(f[3])});
    examples += records.back().num_examples;
  }
  unit_ = *unit;
  folded_ = std::move(records);
  examples_ = examples;
  prefolded_ = std::move(prefolded);
  sum_ = count > 0 ? *std::move(sum) : ExactSum();
  return absl::OkStatus();
}

}  // namespace fedsim
