#include "sim/participation.h"

#include <algorithm>
#include <cmath>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "config/fleet.h"
#include "sim/participation_probability.h"
#include "sim/participation_trace.h"
#include "util/rng.h"

namespace fedsim {
namespace {

// Markov checkpoints every 2^8 rounds bound the cost of a backward query.
constexpr uint64_t kCheckpointShift = 8;
constexpr uint64_t kCheckpointEvery = uint64_t{1} << kCheckpointShift;

absl::Status Invalid(absl::string_view field, absl::string_view what, double v) {
  return absl::InvalidArgumentError(
      absl::StrCat("participation.", field, " must be ", what, ", got ", v));
}

// numpy's np.round: round half to even (std::nearbyint in the default
// rounding mode does the same).
uint32_t CyclicOn(uint32_t period, double p) {
  const double r = std::nearbyint(static_cast<double>(period) * p);
  return static_cast<uint32_t>(std::max(1.0, r));
}

}  // namespace

ParticipationModel::~ParticipationModel() = default;

absl::StatusOr<std::unique_ptr<ParticipationModel>> ParticipationModel::Create(
    const config::Participation& config, size_t num_clients,
    const std::vector<std::vector<double>>& label_distributions, uint64_t seed,
    const std::string& scenario_dir) {
  if (num_clients == 0) return absl::InvalidArgumentError("participation: num_clients is 0");
  // The parameter checks are the scenario's (config/fleet.h), written once.
  ProblemList problems;
  ValidateParticipation(config, static_cast<uint32_t>(std::min<size_t>(num_clients, UINT32_MAX)),
                        &problems);
  if (!problems.empty()) return problems.ToStatus();
  std::unique_ptr<ParticipationModel> m(new ParticipationModel());
  m->num_clients_ = num_clients;
  m->seed_ = seed;
  m->round_s_ = config.round_s();

  switch (config.process_case()) {
    case config::Participation::PROCESS_NOT_SET:
    case config::Participation::kAlways:
      m->kind_ = Kind::kAlways;
      break;
    case config::Participation::kBernoulli:
      m->kind_ = Kind::kBernoulli;
      break;
    case config::Participation::kMarkov:
      m->kind_ = Kind::kMarkov;
      break;
    case config::Participation::kCyclic:
      m->kind_ = Kind::kCyclic;
      break;
    case config::Participation::kTrace:
      m->kind_ = Kind::kTrace;
      break;
  }

  // p_i.
  if (m->kind_ == Kind::kAlways) {
    m->p_.assign(num_clients, 1.0);
  } else {
    const config::ParticipationProbability& prob = config.probability();
    absl::StatusOr<std::vector<double>> p;
    if (prob.kind_case() == config::ParticipationProbability::kLabelCorrelated) {
      p = LabelCorrelatedProbabilities(prob.label_correlated(), num_clients, label_distributions,
                                       seed);
    } else {
      p = ProbabilitiesFromDistribution(prob.distribution(), num_clients, seed);
    }
    if (!p.ok()) return p.status();
    for (size_t i = 0; i < num_clients; ++i) {
      double& v = (*p)[i];
      if (std::isnan(v)) {
        return absl::InvalidArgumentError(
            absl::StrCat("participation.probability: client ", i, " has p = NaN"));
      }
      v = std::clamp(v, 0.0, 1.0);
    }
    m->p_ = *std::move(p);
  }

  switch (m->kind_) {
    case Kind::kAlways:
    case Kind::kBernoulli:
      break;
    case Kind::kMarkov: {
      m->markov_a_.resize(num_clients);
      m->markov_b_.resize(num_clients);
      m->markov_cache_.resize(num_clients);
      const double a0 = config.markov().a();
      for (size_t i = 0; i < num_clients; ++i) {
        const double p = m->p_[i];
        double a = a0, b;
        if (p <= 0) {
          a = 0;  // 1/p - 1 is infinite: the authors' a /= b gives 0
          b = 1;
        } else {
          b = a * (1.0 / p - 1.0);
          if (b > 1) {
            a /= b;
            b = 1;
          }
        }
        m->markov_a_[i] = a;
        m->markov_b_[i] = b;
      }
      break;
    }
    case Kind::kCyclic: {
      const uint32_t period = config.cyclic().period();
      m->cyclic_on_.resize(num_clients);
      m->cyclic_off_.resize(num_clients);
      m->cyclic_shift_.resize(num_clients);
      for (size_t i = 0; i < num_clients; ++i) {
        const uint32_t on = CyclicOn(period, m->p_[i]);
        const uint32_t off = period > on ? period - on : 1;
        const uint64_t k = Rng(seed, "participation_phase", i).UniformInt(off);
        m->cyclic_on_[i] = on;
        m->cyclic_off_[i] = off;
        m->cyclic_shift_[i] = off - static_cast<uint32_t>(k);
      }
      break;
    }
    case Kind::kTrace: {
      absl::StatusOr<TraceWindows> w =
          ReadTraceCsv(ResolveTracePath(config.trace().csv(), scenario_dir), num_clients);
      if (!w.ok()) return w.status();
      m->windows_ = *std::move(w);
      break;
    }
  }
  return m;
}

absl::StatusOr<std::unique_ptr<ParticipationModel>> ParticipationModel::FromWindows(
    std::vector<std::vector<std::pair<double, double>>> windows, std::vector<double> probabilities,
    double round_s) {
  const size_t n = windows.size();
  if (n == 0) return absl::InvalidArgumentError("participation windows: no clients");
  if (probabilities.size() != n) {
    return absl::InvalidArgumentError(
        absl::StrCat("participation windows: ", probabilities.size(), " probabilities for ", n,
                     " clients"));
  }
  if (!(round_s >= 0 && std::isfinite(round_s))) return Invalid("round_s", "finite and >= 0", round_s);
  for (size_t i = 0; i < n; ++i) {
    if (!(probabilities[i] >= 0 && probabilities[i] <= 1)) {
      return absl::InvalidArgumentError(absl::StrCat("participation windows: client ", i,
                                                     " has p = ", probabilities[i],
                                                     ", outside [0, 1]"));
    }
    for (const auto& [start, end] : windows[i]) {
      if (!(start >= 0 && std::isfinite(start) && end > start)) {
        return absl::InvalidArgumentError(
            absl::StrCat("participation windows: client ", i, " has the window [", start, ", ",
                         end, "); need 0 <= start < end (end may be infinite)"));
      }
    }
  }
  MergeWindows(windows);
  std::unique_ptr<ParticipationModel> m(new ParticipationModel());
  m->kind_ = Kind::kTrace;
  m->num_clients_ = n;
  m->round_s_ = round_s;
  m->p_ = std::move(probabilities);
  m->windows_ = std::move(windows);
  return m;
}

bool ParticipationModel::time_based() const {
  switch (kind_) {
    case Kind::kAlways:
      return false;
    case Kind::kTrace:
      return true;
    default:
      return round_s_ > 0;
  }
}

const std::vector<std::pair<double, double>>& ParticipationModel::windows(ClientId id) const {
  static const std::vector<std::pair<double, double>>* const kNone =
      new std::vector<std::pair<double, double>>();
  if (kind_ != Kind::kTrace) return *kNone;
  return windows_[id];
}

bool ParticipationModel::InRound(ClientId id, uint64_t round) const {
  switch (kind_) {
    case Kind::kAlways:
      return true;
    case Kind::kBernoulli:
      return Rng(seed_, "participation", id, round).Uniform() < p_[id];
    case Kind::kMarkov:
      return MarkovInRound(id, round);
    case Kind::kCyclic:
      return CyclicInRound(id, round);
    case Kind::kTrace:
      return TraceAt(id, static_cast<double>(round) * (round_s_ > 0 ? round_s_ : 1.0));
  }
  return false;
}

bool ParticipationModel::AvailableAt(ClientId id, double t) const {
  if (kind_ == Kind::kTrace) return TraceAt(id, t);
  if (kind_ == Kind::kAlways || round_s_ <= 0) return true;
  return InRound(id, RoundAt(t));
}

uint64_t ParticipationModel::RoundAt(double t) const {
  if (!(t > 0)) return 0;
  const double q = std::floor(t / round_s_);
  if (q >= 9.0e18) return static_cast<uint64_t>(9.0e18);
  uint64_t r = static_cast<uint64_t>(q);
  // t / round_s rounds; settle r against the products r * round_s that the
  // change stream reports as round start times.
  while (r > 0 && static_cast<double>(r) * round_s_ > t) --r;
  while (static_cast<double>(r + 1) * round_s_ <= t) ++r;
  return r;
}

bool ParticipationModel::TraceAt(ClientId id, double t) const {
  const auto& w = windows_[id];
  // The last window starting at or before t.
  auto it =
      std::upper_bound(w.begin(), w.end(), t,
                       [](double v, const std::pair<double, double>& x) { return v < x.first; });
  if (it == w.begin()) return false;
  --it;
  return t < it->second;
}

bool ParticipationModel::MarkovInitial(ClientId id) const {
  return Rng(seed_, "participation_init", id).Uniform() < p_[id];
}

bool ParticipationModel::MarkovStep(ClientId id, uint64_t round, bool state) const {
  const double u = Rng(seed_, "participation", id, round).Uniform();
  return state ? !(u < markov_b_[id]) : (u < markov_a_[id]);
}

bool ParticipationModel::MarkovCanLeave(ClientId id, bool state) const {
  return state ? markov_b_[id] > 0 : markov_a_[id] > 0;
}

bool ParticipationModel::MarkovInRound(ClientId id, uint64_t round) const {
  MarkovCache& c = markov_cache_[id];
  auto record = [&c]() {
    // Called when c.round is a multiple of kCheckpointEvery seen for the first time.
    const uint64_t k = c.num_checkpoints++;
    if (k % 64 == 0) c.checkpoints.push_back(0);
    if (c.state) c.checkpoints[k / 64] |= uint64_t{1} << (k % 64);
  };
  if (!c.valid) {
    c.valid = true;
    c.round = 0;
    c.state = MarkovStep(id, 0, MarkovInitial(id));
    record();
  }
  if (round < c.round) {
    // Every multiple of kCheckpointEvery up to c.round has a checkpoint.
    const uint64_t k = round >> kCheckpointShift;
    c.round = k << kCheckpointShift;
    c.state = (c.checkpoints[k / 64] >> (k % 64)) & 1;
  }
  while (c.round < round) {
    ++c.round;
    c.state = MarkovStep(id, c.round, c.state);
    if ((c.round & (kCheckpointEvery - 1)) == 0 &&
        (c.round >> kCheckpointShift) == c.num_checkpoints) {
      record();
    }
  }
  return c.state;
}

bool ParticipationModel::CyclicInRound(ClientId id, uint64_t round) const {
  const uint64_t len = uint64_t{cyclic_on_[id]} + cyclic_off_[id];
  return (round + cyclic_shift_[id]) % len >= cyclic_off_[id];
}

uint64_t ParticipationModel::CyclicNextChange(ClientId id, uint64_t round) const {
  const uint64_t len = uint64_t{cyclic_on_[id]} + cyclic_off_[id];
  const uint64_t pos = (round + cyclic_shift_[id]) % len;
  // On: the cycle wraps to position 0 (off). Off: position off_i turns on.
  return pos >= cyclic_off_[id] ? round + (len - pos) : round + (cyclic_off_[id] - pos);
}

}  // namespace fedsim
