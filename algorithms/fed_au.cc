// FedAU (ALGORITHMS.md section 5).
//
// Paper: Shiqiang Wang and Mingyue Ji, "A Lightweight Method for Tackling
// Unknown Participation Statistics in Federated Averaging", ICLR 2024,
// arXiv 2306.03401. Baselines as in the authors' code (IBM/fedau, main.py):
// MIFA (Gu et al., arXiv 2106.04159) and FedVarp (Jhunjhunwala et al.,
// arXiv 2207.14130).
//
// Where we differ from the authors' code, and why:
//  - The code loops over all N clients each round inside the trainer; here
//    the engine dispatches the participants and the rule sees only their
//    updates. A participant whose update is lost (dropout) or refused counts
//    as not participating: the server can only observe arrivals.
//  - Interval recording happens at Commit, after all of the round's updates
//    are in; omega_i is read at Accept from the intervals recorded before
//    the round, which is the code's "weight before recording this one".
//  - The code's infinite cutoff is a large k_value; we use cutoff 0.
//  - FedVarp in an empty round: the code adds nothing (w_tmp_a = 0), not
//    ybar; we follow the code. MIFA applies its memory average in every
//    round, empty ones included, as the code does.
//  - Sums run in arrival order (the engine's event order) with the float
//    accumulation of aggregate.h, not in client-id order as in the code, so
//    results are bit-reproducible for a given event order.
#include "algorithms/fed_au.h"

#include <algorithm>
#include <cmath>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "algorithms/aggregate.h"
#include "algorithms/rule_util.h"
#include "util/checks.h"

namespace fedsim {
namespace {

using Method = config::FedAu::Method;

class FedAu final : public Algorithm {
 public:
  FedAu(Method method, uint32_t cutoff, double server_lr, size_t num_clients, size_t num_params)
      : method_(method),
        cutoff_(cutoff),
        eta_(server_lr),
        n_(num_clients),
        dim_(num_params),
        interval_sum_(num_clients, 0),
        interval_count_(num_clients, 0),
        since_(num_clients, 0),
        pending_(num_clients, 0) {
    if (HasMemory()) memory_.resize(num_clients);
  }

  std::string_view Name() const override { return "fedau"; }

  absl::StatusOr<std::vector<Dispatch>> Select(const FleetView& fleet, Rng& rng) override {
    (void)rng;  // participation is the processes' decision, not a draw
    if (in_round_) return std::vector<Dispatch>();
    std::vector<Dispatch> out;
    for (ClientId c : fleet.idle_available()) {
      if (c < n_ && fleet.ParticipatesInRound(c, round_)) {
        out.push_back(Dispatch{
            .client = c, .base = std::nullopt, .overrides = {}, .fold_weight = std::nullopt});
      }
    }
    if (out.empty()) return out;  // an empty round: ReadyToCommit says so
    in_round_ = true;
    round_version_ = fleet.version();
    for (const Dispatch& d : out) pending_[d.client] = 1;
    num_pending_ = out.size();
    return out;
  }

  absl::Status Accept(const FleetView& fleet, ClientUpdate update) override {
    const ClientId c = update.client;
    if (!in_round_ || c >= n_ || !pending_[c]) {
      return absl::FailedPreconditionError(
          absl::StrCat("fedau: client ", c, " is not a pending participant of round ", round_));
    }
    // From here on the client is no longer awaited, whatever the outcome: a
    // refused update counts as non-participation.
    pending_[c] = 0;
    --num_pending_;
    if (update.base.version != round_version_) {
      return absl::FailedPreconditionError(
          absl::StrCat("fedau: update of client ", c, " trained from version ", update.base.version,
                       ", round ", round_, " started from ", round_version_));
    }
    absl::Status ok = CheckDelta(update, dim_);
    if (!ok.ok()) return ok;
    if (dim_ == 0) dim_ = update.delta.size();
    if (acc_.empty()) acc_.assign(dim_, 0.0f);

    double weight = 1.0;  // coefficient inside the round's sum
    switch (method_) {
      case config::FedAu::FEDAU:
        weight = Omega(c);
        AddWeighted(acc_, weight, update.delta);
        break;
      case config::FedAu::KNOWN_PROB: {
        const double p = fleet.client(c).participation_prob;
        if (!(p > 0)) {
          return absl::FailedPreconditionError(
              absl::StrCat("fedau.known_prob: client ", c, " has participation probability ", p));
        }
        weight = 1.0 / p;
        AddWeighted(acc_, weight, update.delta);
        break;
      }
      case config::FedAu::FEDVARP:
        AddWeighted(acc_, 1.0, update.delta);
        if (!memory_[c].empty()) AddWeighted(acc_, -1.0, memory_[c]);
        break;
      case config::FedAu::MIFA:
        break;  // only the memory matters; it is updated at Commit
      default:
        AddWeighted(acc_, 1.0, update.delta);
        break;
    }
    arrived_.push_back(Arrival{update.task_id, c, update.staleness, weight});
    if (HasMemory()) arrived_deltas_.push_back(std::move(update.delta));
    return absl::OkStatus();
  }

  void OnTaskLost(const FleetView& fleet, TaskId task, ClientId client) override {
    (void)fleet;
    (void)task;
    if (in_round_ && client < n_ && pending_[client]) {
      pending_[client] = 0;
      --num_pending_;
    }
  }

  bool ReadyToCommit(const FleetView& fleet) const override {
    if (in_round_) return num_pending_ == 0;
    // No round in progress: ready iff round r would be empty.
    for (ClientId c : fleet.idle_available()) {
      if (c < n_ && fleet.ParticipatesInRound(c, round_)) return false;
    }
    return true;
  }

  absl::StatusOr<CommitResult> Commit(const FleetView& fleet, ModelBank& models) override {
    const std::span<float> global = models.global();
    (void)fleet;
    if (in_round_ && num_pending_ > 0) {
      return absl::FailedPreconditionError(absl::StrCat(
          "fedau: Commit with ", num_pending_, " updates of round ", round_, " outstanding"));
    }
    if (dim_ != 0 && global.size() != dim_) {
      return absl::InvalidArgumentError(
          absl::StrCat("fedau: global model has ", global.size(), " values, want ", dim_));
    }
    if (dim_ == 0) dim_ = global.size();
    const double n = static_cast<double>(n_);
    const double s = static_cast<double>(arrived_.size());
    CommitResult result;
    result.applied.reserve(arrived_.size());
    auto report = [&](double scale) {
      for (const Arrival& a : arrived_) {
        result.applied.push_back(AppliedUpdate{.task_id = a.task,
                                               .client = a.client,
                                               .staleness = a.staleness,
                                               .weight = scale * a.weight});
      }
    };

    switch (method_) {
      case config::FedAu::FEDAU:
      case config::FedAu::AVERAGE_ALL:
      case config::FedAu::KNOWN_PROB:
        if (!arrived_.empty()) AddWeighted(global, eta_ / n, acc_);
        report(eta_ / n);
        break;
      case config::FedAu::AVERAGE_PARTICIPATING:
        if (!arrived_.empty()) AddWeighted(global, eta_ / s, acc_);
        report(eta_ / s);
        break;
      case config::FedAu::MIFA: {
        UpdateMemory();
        if (!memory_sum_.empty()) {
          for (size_t j = 0; j < dim_; ++j) {
            global[j] =
                static_cast<float>(static_cast<double>(global[j]) + eta_ * (memory_sum_[j] / n));
          }
        }
        report(eta_ / n);
        break;
      }
      case config::FedAu::FEDVARP: {
        if (!arrived_.empty()) {
          // ybar from the memories before this round, then the correction.
          for (size_t j = 0; j < dim_; ++j) {
            const double ybar = memory_sum_.empty() ? 0.0 : memory_sum_[j] / n;
            global[j] = static_cast<float>(static_cast<double>(global[j]) +
                                           eta_ * (ybar + static_cast<double>(acc_[j]) / s));
          }
        }
        UpdateMemory();
        report(eta_ / s);
        break;
      }
      default:
        break;
    }

    RecordIntervals();
    ++round_;
    in_round_ = false;
    std::fill(pending_.begin(), pending_.end(), 0);
    num_pending_ = 0;
    arrived_.clear();
    arrived_deltas_.clear();
    acc_.clear();
    return result;
  }

  absl::Status SaveState(AlgorithmState* out) const override {
    PutScalar(out, "fedau.method", static_cast<double>(method_));
    PutScalar(out, "fedau.round", static_cast<double>(round_));
    PutScalars(out, "fedau.interval_sum", ToDoubles(interval_sum_));
    PutScalars(out, "fedau.interval_count", ToDoubles(interval_count_));
    PutScalars(out, "fedau.since", ToDoubles(since_));
    if (HasMemory()) {
      std::vector<double> clients;
      for (size_t c = 0; c < n_; ++c) {
        if (memory_[c].empty()) continue;
        clients.push_back(static_cast<double>(c));
        PutTensor(out, absl::StrCat("fedau.memory.", c), memory_[c]);
      }
      PutScalars(out, "fedau.memory_clients", std::move(clients));
      PutScalars(out, "fedau.memory_sum", memory_sum_);
    }
    // A round in progress.
    PutScalar(out, "fedau.in_round", in_round_ ? 1.0 : 0.0);
    PutScalar(out, "fedau.round_version", static_cast<double>(round_version_));
    std::vector<double> pending;
    for (size_t c = 0; c < n_; ++c) {
      if (pending_[c]) pending.push_back(static_cast<double>(c));
    }
    PutScalars(out, "fedau.pending", std::move(pending));
    std::vector<double> arrived;
    for (const Arrival& a : arrived_) {
      arrived.insert(arrived.end(), {static_cast<double>(a.task), static_cast<double>(a.client),
                                     static_cast<double>(a.staleness), a.weight});
    }
    PutScalars(out, "fedau.arrived", std::move(arrived));
    PutTensor(out, "fedau.acc", acc_);
    for (size_t k = 0; k < arrived_deltas_.size(); ++k) {
      PutTensor(out, absl::StrCat("fedau.arrived_delta.", k), arrived_deltas_[k]);
    }
    return absl::OkStatus();
  }

  absl::Status LoadState(const AlgorithmState& in) override {
    // Decode everything first; commit to *this only when all of it is valid.
    FedAu next(method_, cutoff_, eta_, n_, dim_);
    absl::StatusOr<uint64_t> method = GetCount(in, "fedau.method");
    if (!method.ok()) return method.status();
    if (*method != static_cast<uint64_t>(method_)) {
      return absl::InvalidArgumentError(absl::StrCat(
          "fedau: state is of method ", config::FedAu::Method_Name(static_cast<Method>(*method)),
          ", this rule is ", config::FedAu::Method_Name(method_)));
    }
    absl::StatusOr<uint64_t> round = GetCount(in, "fedau.round");
    if (!round.ok()) return round.status();
    next.round_ = *round;
    for (auto [key, dst] : {std::pair{"fedau.interval_sum", &next.interval_sum_},
                            std::pair{"fedau.interval_count", &next.interval_count_},
                            std::pair{"fedau.since", &next.since_}}) {
      absl::Status s = GetCounts(in, key, n_, dst);
      if (!s.ok()) return s;
    }
    if (HasMemory()) {
      std::vector<uint64_t> clients;
      absl::Status s = GetCounts(in, "fedau.memory_clients", SIZE_MAX, &clients);
      if (!s.ok()) return s;
      for (uint64_t c : clients) {
        if (c >= n_) return Malformed("fedau.memory_clients");
        absl::StatusOr<std::vector<float>> m =
            GetTensor(in, absl::StrCat("fedau.memory.", c), next.dim_);
        if (!m.ok()) return m.status();
        if (next.dim_ == 0) next.dim_ = m->size();
        next.memory_[c] = *std::move(m);
      }
      absl::StatusOr<std::vector<double>> sum =
          GetScalars(in, "fedau.memory_sum", clients.empty() ? SIZE_MAX : next.dim_);
      if (!sum.ok()) return sum.status();
      next.memory_sum_ = *std::move(sum);
    }
    absl::StatusOr<uint64_t> in_round = GetCount(in, "fedau.in_round");
    if (!in_round.ok()) return in_round.status();
    if (*in_round > 1) return Malformed("fedau.in_round");
    next.in_round_ = *in_round == 1;
    absl::StatusOr<uint64_t> version = GetCount(in, "fedau.round_version");
    if (!version.ok()) return version.status();
    next.round_version_ = *version;
    std::vector<uint64_t> pending;
    absl::Status s = GetCounts(in, "fedau.pending", SIZE_MAX, &pending);
    if (!s.ok()) return s;
    for (uint64_t c : pending) {
      if (c >= n_ || next.pending_[c]) return Malformed("fedau.pending");
      next.pending_[c] = 1;
    }
    next.num_pending_ = pending.size();
    absl::StatusOr<std::vector<double>> arrived = GetScalars(in, "fedau.arrived");
    if (!arrived.ok()) return arrived.status();
    if (arrived->size() % 4 != 0) return Malformed("fedau.arrived");
    for (size_t k = 0; k < arrived->size(); k += 4) {
      const double* a = arrived->data() + k;
      uint64_t task, client, staleness;
      if (!ToCount(a[0], &task) || !ToCount(a[1], &client) || client >= n_ ||
          !ToCount(a[2], &staleness) || !std::isfinite(a[3])) {
        return Malformed("fedau.arrived");
      }
      next.arrived_.push_back(Arrival{task, static_cast<ClientId>(client), staleness, a[3]});
    }
    if (!next.in_round_ && (!next.arrived_.empty() || next.num_pending_ > 0)) {
      return Malformed("fedau.in_round");
    }
    absl::StatusOr<std::vector<float>> acc = GetTensor(in, "fedau.acc", 0);
    if (!acc.ok()) return acc.status();
    if (!acc->empty() && next.dim_ != 0 && acc->size() != next.dim_) return Malformed("fedau.acc");
    next.acc_ = *std::move(acc);
    if (next.dim_ == 0) next.dim_ = next.acc_.size();
    if (HasMemory()) {
      for (size_t k = 0; k < next.arrived_.size(); ++k) {
        absl::StatusOr<std::vector<float>> d =
            GetTensor(in, absl::StrCat("fedau.arrived_delta.", k), next.dim_);
        if (!d.ok()) return d.status();
        next.arrived_deltas_.push_back(*std::move(d));
      }
    }
    *this = std::move(next);
    return absl::OkStatus();
  }

 private:
  struct Arrival {
    TaskId task;
    ClientId client;
    uint64_t staleness;
    double weight;  // coefficient inside the round's sum (omega_i, 1/p_i or 1)
  };

  FedAu(FedAu&&) = default;
  FedAu& operator=(FedAu&&) = default;

  bool HasMemory() const {
    return method_ == config::FedAu::MIFA || method_ == config::FedAu::FEDVARP;
  }

  // omega_i: the mean recorded interval, 1 before the first.
  double Omega(ClientId c) const {
    if (interval_count_[c] == 0) return 1.0;
    return static_cast<double>(interval_sum_[c]) / static_cast<double>(interval_count_[c]);
  }

  // y_i = delta_i for this round's arrivals, keeping the running sum.
  void UpdateMemory() {
    if (arrived_.empty()) return;
    if (memory_sum_.empty()) memory_sum_.assign(dim_, 0.0);
    for (size_t k = 0; k < arrived_.size(); ++k) {
      std::vector<float>& y = memory_[arrived_[k].client];
      std::vector<float>& d = arrived_deltas_[k];
      for (size_t j = 0; j < dim_; ++j) {
        memory_sum_[j] += static_cast<double>(d[j]) - (y.empty() ? 0.0 : static_cast<double>(y[j]));
      }
      y = std::move(d);
    }
  }

  void RecordIntervals() {
    for (const Arrival& a : arrived_) pending_[a.client] = 2;  // marks participants
    for (size_t c = 0; c < n_; ++c) {
      if (pending_[c] == 2) {
        interval_sum_[c] += since_[c] + 1;
        ++interval_count_[c];
        since_[c] = 0;
      } else {
        ++since_[c];
        if (cutoff_ > 0 && since_[c] >= cutoff_) {
          interval_sum_[c] += since_[c];
          ++interval_count_[c];
          since_[c] = 0;
        }
      }
    }
  }

  static std::vector<double> ToDoubles(const std::vector<uint64_t>& v) {
    return std::vector<double>(v.begin(), v.end());
  }
  static bool ToCount(double v, uint64_t* out) {
    if (!(v >= 0) || v > 9007199254740992.0 || std::floor(v) != v) return false;
    *out = static_cast<uint64_t>(v);
    return true;
  }
  static absl::Status Malformed(const std::string& key) {
    return absl::InvalidArgumentError(absl::StrCat("algorithm state '", key, "' is malformed"));
  }
  static absl::Status GetCounts(const AlgorithmState& in, const std::string& key, size_t size,
                                std::vector<uint64_t>* out) {
    absl::StatusOr<std::vector<double>> v = GetScalars(in, key, size);
    if (!v.ok()) return v.status();
    out->resize(v->size());
    for (size_t i = 0; i < v->size(); ++i) {
      if (!ToCount((*v)[i], &(*out)[i])) return Malformed(key);
    }
    return absl::OkStatus();
  }

  // Configuration.
  Method method_;
  uint32_t cutoff_;  // 0 = infinite
  double eta_;
  size_t n_;
  size_t dim_;  // 0 until the first update or commit when the context had none

  // Across rounds.
  uint64_t round_ = 0;
  std::vector<uint64_t> interval_sum_;      // sum of recorded intervals
  std::vector<uint64_t> interval_count_;    // number of recorded intervals
  std::vector<uint64_t> since_;             // S_i: rounds since the last record
  std::vector<std::vector<float>> memory_;  // MIFA/FedVarp y_i; empty = 0
  std::vector<double> memory_sum_;          // sum_i y_i; empty = 0

  // The round in progress.
  bool in_round_ = false;
  Version round_version_ = 0;
  std::vector<uint8_t> pending_;  // 1 = dispatched, not yet in
  size_t num_pending_ = 0;
  std::vector<Arrival> arrived_;                    // arrival order
  std::vector<std::vector<float>> arrived_deltas_;  // MIFA/FedVarp, arrival order
  std::vector<float> acc_;                          // sum of the weighted round contributions
};

}  // namespace

void ValidateFedAu(const config::Algorithm& config, const RuleCheckContext& context,
                   ProblemList* problems) {
  (void)context;
  const config::FedAu& a = config.fedau();
  CheckPositive(a.server_lr(), "algorithm.fedau.server_lr", "1.0 is the paper's default", problems);
  if (a.method() == config::FedAu::METHOD_UNSPECIFIED ||
      !config::FedAu::Method_IsValid(a.method())) {
    problems->Add("algorithm.fedau.method", "is unspecified; use e.g. FEDAU");
  }
}

uint64_t FedAuStateBytes(const config::Algorithm& config, uint64_t num_clients,
                         uint64_t num_params) {
  const config::FedAu::Method m = config.fedau().method();
  if (m == config::FedAu::MIFA || m == config::FedAu::FEDVARP) {
    return ModelBytes(num_clients, num_params);
  }
  return num_clients * 3 * sizeof(uint64_t);  // interval sum, count and S_i
}

absl::StatusOr<std::unique_ptr<Algorithm>> NewFedAu(const config::Algorithm& config,
                                                    const AlgorithmContext& context) {
  if (config.rule_case() != config::Algorithm::kFedau) {
    return absl::InvalidArgumentError("NewFedAu: the config's rule is not fedau");
  }
  if (absl::Status s = ValidateInFactory(&ValidateFedAu, config, context); !s.ok()) return s;
  if (context.num_clients == 0) {
    return absl::InvalidArgumentError("fedau: num_clients must be >= 1");
  }
  const config::FedAu& c = config.fedau();
  return std::unique_ptr<Algorithm>(
      new FedAu(c.method(), c.cutoff(), c.server_lr(), context.num_clients, context.num_params));
}

}  // namespace fedsim
