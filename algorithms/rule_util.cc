#include "algorithms/rule_util.h"

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstdint>
#include <limits>
#include <utility>

#include "absl/strings/str_cat.h"

namespace fedsim {

std::vector<Dispatch> SampleIdle(const FleetView& fleet, Rng& rng, size_t k) {
  // Random access through nth_idle_available keeps this O(k log N) on the
  // engine's fleet instead of materializing the idle list.
  const size_t idle = fleet.num_idle_available();
  k = std::min(k, idle);
  std::vector<Dispatch> out;
  if (k == 0) return out;
  out.reserve(k);
  for (uint64_t i : rng.SampleWithoutReplacement(idle, k)) {
    out.push_back(Dispatch{.client = fleet.nth_idle_available(i),
                           .base = std::nullopt,
                           .overrides = {},
                           .fold_weight = std::nullopt});
  }
  return out;
}

std::vector<Dispatch> TopUp(const FleetView& fleet, Rng& rng, uint32_t concurrency) {
  if (concurrency == 0) {
    std::vector<Dispatch> out;
    for (ClientId c : fleet.idle_available()) {
      out.push_back(Dispatch{
          .client = c, .base = std::nullopt, .overrides = {}, .fold_weight = std::nullopt});
    }
    return out;
  }
  const size_t busy = fleet.num_busy();
  if (busy >= concurrency) return {};
  return SampleIdle(fleet, rng, concurrency - busy);
}

void CheckConcurrency(uint32_t concurrency, uint32_t num_clients, bool zero_means_all,
                      const std::string& path, ProblemList* problems) {
  if (concurrency == 0 && !zero_means_all) {
    problems->Add(path, "is 0, so no client would ever train; use 1 .. num_clients");
  } else if (num_clients > 0 && concurrency > num_clients) {
    problems->Add(path, absl::StrCat(concurrency, " is larger than num_clients ", num_clients,
                                     "; at most num_clients clients can train at once, lower it "
                                     "or raise num_clients"));
  }
}

absl::Status ValidateInFactory(AlgorithmValidator validate, const config::Algorithm& config,
                               const AlgorithmContext& context) {
  ProblemList problems;
  const size_t n = std::min<size_t>(context.num_clients, std::numeric_limits<uint32_t>::max());
  validate(config,
           RuleCheckContext{.num_clients = static_cast<uint32_t>(n),
                            .seed = context.seed,
                            .scenario_dir = context.scenario_dir},
           &problems);
  return problems.ToStatus();
}

uint64_t ModelBytes(uint64_t copies, uint64_t num_params) {
  constexpr uint64_t kMax = std::numeric_limits<uint64_t>::max();
  if (copies == 0 || num_params == 0) return 0;
  if (copies > kMax / 4 / num_params) return kMax;
  return copies * num_params * 4;
}

absl::Status CheckDelta(const ClientUpdate& update, size_t num_params) {
  if (num_params != 0 && update.delta.size() != num_params) {
    return absl::InvalidArgumentError(absl::StrCat("update of task ", update.task_id, " has ",
                                                   update.delta.size(), " values, want ",
                                                   num_params));
  }
  // A float is not finite when its exponent bits are all ones. OR-ing that
  // test over the vector, without an early exit, lets the compiler vectorize
  // the pass (it runs once per update on the server's critical path).
  const std::span<const float> delta = update.delta;
  uint32_t non_finite = 0;
  for (float v : delta) {
    const uint32_t bits = std::bit_cast<uint32_t>(v);
    non_finite |= static_cast<uint32_t>((bits & 0x7f800000u) == 0x7f800000u);
  }
  if (non_finite != 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("update of task ", update.task_id, " has a non-finite value"));
  }
  return absl::OkStatus();
}

void PutScalar(AlgorithmState* out, std::string key, double v) {
  out->scalars[std::move(key)] = {v};
}

void PutScalars(AlgorithmState* out, std::string key, std::vector<double> v) {
  out->scalars[std::move(key)] = std::move(v);
}

void PutTensor(AlgorithmState* out, std::string key, std::span<const float> v) {
  out->tensors[std::move(key)] = std::vector<float>(v.begin(), v.end());
}

absl::StatusOr<std::vector<double>> GetScalars(const AlgorithmState& in, const std::string& key,
                                               size_t size) {
  auto it = in.scalars.find(key);
  if (it == in.scalars.end()) {
    return absl::InvalidArgumentError(absl::StrCat("algorithm state lacks '", key, "'"));
  }
  if (size != SIZE_MAX && it->second.size() != size) {
    return absl::InvalidArgumentError(absl::StrCat("algorithm state '", key, "' has ",
                                                   it->second.size(), " values, want ", size));
  }
  for (double v : it->second) {
    if (std::isnan(v)) {
      return absl::InvalidArgumentError(absl::StrCat("algorithm state '", key, "' holds NaN"));
    }
  }
  return it->second;
}

absl::StatusOr<double> GetScalar(const AlgorithmState& in, const std::string& key) {
  absl::StatusOr<std::vector<double>> v = GetScalars(in, key, 1);
  if (!v.ok()) return v.status();
  return (*v)[0];
}

absl::StatusOr<uint64_t> GetCount(const AlgorithmState& in, const std::string& key) {
  absl::StatusOr<double> v = GetScalar(in, key);
  if (!v.ok()) return v.status();
  if (!(*v >= 0) || *v > 9007199254740992.0 || std::floor(*v) != *v) {
    return absl::InvalidArgumentError(
        absl::StrCat("algorithm state '", key, "' is not a count: ", *v));
  }
  return static_cast<uint64_t>(*v);
}

absl::StatusOr<std::vector<float>> GetTensor(const AlgorithmState& in, const std::string& key,
                                             size_t num_params) {
  auto it = in.tensors.find(key);
  if (it == in.tensors.end()) {
    return absl::InvalidArgumentError(absl::StrCat("algorithm state lacks tensor '", key, "'"));
  }
  if (num_params != 0 && it->second.size() != num_params) {
    return absl::InvalidArgumentError(absl::StrCat("algorithm state tensor '", key, "' has ",
                                                   it->second.size(), " values, want ",
                                                   num_params));
  }
  return it->second;
}

namespace {
constexpr size_t kMetaPerUpdate = 9;
}  // namespace

void PutUpdates(AlgorithmState* out, const std::string& prefix,
                std::span<const ClientUpdate> updates) {
  std::vector<double> meta;
  meta.reserve(updates.size() * kMetaPerUpdate);
  for (size_t i = 0; i < updates.size(); ++i) {
    const ClientUpdate& u = updates[i];
    meta.insert(meta.end(),
                {static_cast<double>(u.task_id), static_cast<double>(u.client),
                 static_cast<double>(u.base.version), static_cast<double>(u.num_examples),
                 u.dispatch_time, u.arrival_time, static_cast<double>(u.staleness),
                 static_cast<double>(u.base.kind), static_cast<double>(u.base.client)});
    PutTensor(out, absl::StrCat(prefix, ".", i), u.delta);
  }
  PutScalars(out, prefix + ".meta", std::move(meta));
}

absl::StatusOr<std::vector<ClientUpdate>> GetUpdates(const AlgorithmState& in,
                                                     const std::string& prefix, size_t num_params) {
  absl::StatusOr<std::vector<double>> meta = GetScalars(in, prefix + ".meta");
  if (!meta.ok()) return meta.status();
  if (meta->size() % kMetaPerUpdate != 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("algorithm state '", prefix, ".meta' has a partial record"));
  }
  auto count = [&](double v, uint64_t* out) {
    if (!(v >= 0) || v > 9007199254740992.0 || std::floor(v) != v) return false;
    *out = static_cast<uint64_t>(v);
    return true;
  };
  std::vector<ClientUpdate> updates(meta->size() / kMetaPerUpdate);
  for (size_t i = 0; i < updates.size(); ++i) {
    const double* m = meta->data() + i * kMetaPerUpdate;
    ClientUpdate& u = updates[i];
    uint64_t client = 0, kind = 0, base_client = 0;
    if (!count(m[0], &u.task_id) || !count(m[1], &client) || !count(m[2], &u.base.version) ||
        !count(m[3], &u.num_examples) || !count(m[6], &u.staleness) || client > UINT32_MAX ||
        !std::isfinite(m[4]) || !std::isfinite(m[5]) || !count(m[7], &kind) || kind > 1 ||
        !count(m[8], &base_client) || base_client > UINT32_MAX) {
      return absl::InvalidArgumentError(
          absl::StrCat("algorithm state '", prefix, ".meta' record ", i, " is malformed"));
    }
    u.client = static_cast<ClientId>(client);
    u.base.kind = static_cast<ModelRef::Kind>(kind);
    u.base.client = static_cast<ClientId>(base_client);
    u.dispatch_time = m[4];
    u.arrival_time = m[5];
    absl::StatusOr<std::vector<float>> delta =
        GetTensor(in, absl::StrCat(prefix, ".", i), num_params);
    if (!delta.ok()) return delta.status();
    u.delta = *std::move(delta);
  }
  return updates;
}

}  // namespace fedsim
