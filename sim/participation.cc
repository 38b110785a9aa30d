#include "sim/participation.h"

#include <algorithm>
#include <cmath>
#include <fstream>
#include <sstream>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/string_view.h"
#include "config/fleet.h"
#include "util/rng.h"

namespace fedsim {
namespace {

// Markov checkpoints every 2^8 rounds bound the cost of a backward query.
constexpr uint64_t kCheckpointShift = 8;
constexpr uint64_t kCheckpointEvery = uint64_t{1} << kCheckpointShift;
// Rounds a ChangeStream scans for one client before it parks a probe.
constexpr uint64_t kMaxScan = 1024;

absl::Status Invalid(absl::string_view field, absl::string_view what, double v) {
  return absl::InvalidArgumentError(
      absl::StrCat("participation.", field, " must be ", what, ", got ", v));
}

absl::StatusOr<std::vector<double>> SampleDistribution(const config::Distribution& d, size_t n,
                                                       uint64_t seed) {
  std::vector<double> out(n, 1.0);
  switch (d.kind_case()) {
    case config::Distribution::KIND_NOT_SET:
      break;  // the documented default, constant 1
    case config::Distribution::kConstant:
      std::fill(out.begin(), out.end(), d.constant());
      break;
    case config::Distribution::kUniform: {
      const double lo = d.uniform().lo(), hi = d.uniform().hi();
      for (size_t i = 0; i < n; ++i) out[i] = Rng(seed, "participation_prob", i).Uniform(lo, hi);
      break;
    }
    case config::Distribution::kLognormal: {
      const double mu = d.lognormal().mu(), sigma = d.lognormal().sigma();
      for (size_t i = 0; i < n; ++i) {
        out[i] = Rng(seed, "participation_prob", i).LogNormal(mu, sigma);
      }
      break;
    }
    case config::Distribution::kLinear: {
      const double base = d.linear().base(), x = d.linear().x_percent() / 100.0;
      for (size_t i = 0; i < n; ++i) {
        out[i] =
            n == 1 ? base : base * (1.0 - static_cast<double>(i) * x / static_cast<double>(n - 1));
      }
      break;
    }
    case config::Distribution::kTable:
      for (size_t i = 0; i < n; ++i) out[i] = d.table().values(static_cast<int>(i));
      break;
  }
  return out;
}

absl::StatusOr<std::vector<double>> LabelCorrelated(
    const config::ParticipationProbability::LabelCorrelated& lc, size_t n,
    const std::vector<std::vector<double>>& labels, uint64_t seed) {
  if (labels.size() != n) {
    return absl::InvalidArgumentError(
        absl::StrCat("participation.probability.label_correlated needs the label distribution "
                     "of every client: got ",
                     labels.size(), " rows for ", n, " clients"));
  }
  const size_t num_classes = labels[0].size();
  if (num_classes == 0) {
    return absl::InvalidArgumentError(
        "participation.probability.label_correlated: label distributions have no classes");
  }
  // One m for the whole fleet: that shared draw is what correlates
  // participation with labels.
  const std::vector<double> m =
      Rng(seed, "participation_labels").DirichletSymmetric(lc.alpha_part(), num_classes);
  std::vector<double> out(n);
  for (size_t i = 0; i < n; ++i) {
    if (labels[i].size() != num_classes) {
      return absl::InvalidArgumentError(
          absl::StrCat("participation.probability.label_correlated: client ", i, " has ",
                       labels[i].size(), " label classes, client 0 has ", num_classes));
    }
    double total = 0, dot = 0;
    for (size_t c = 0; c < num_classes; ++c) {
      if (!(labels[i][c] >= 0)) {
        return absl::InvalidArgumentError(
            absl::StrCat("participation.probability.label_correlated: client ", i,
                         " has a negative label share"));
      }
      total += labels[i][c];
      dot += labels[i][c] * m[c];
    }
    const double share = total > 0 ? dot / total : 0.0;
    out[i] = std::max(lc.p_min(), lc.p_mean() * static_cast<double>(num_classes) * share);
  }
  return out;
}

std::string ResolvePath(const std::string& path, const std::string& dir) {
  if (path.empty() || path[0] == '/' || dir.empty()) return path;
  if (dir.back() == '/') return dir + path;
  return dir + "/" + path;
}

// Merges overlapping and touching windows so that every boundary left is an
// actual change of state.
void MergeWindows(std::vector<std::vector<std::pair<double, double>>>& windows) {
  for (auto& w : windows) {
    std::sort(w.begin(), w.end());
    std::vector<std::pair<double, double>> merged;
    for (const auto& [s, e] : w) {
      if (!merged.empty() && s <= merged.back().second) {
        merged.back().second = std::max(merged.back().second, e);
      } else {
        merged.emplace_back(s, e);
      }
    }
    w = std::move(merged);
  }
}

absl::StatusOr<std::vector<std::vector<std::pair<double, double>>>> ReadTrace(
    const std::string& path, size_t num_clients) {
  std::ifstream in(path);
  if (!in) {
    return absl::NotFoundError(absl::StrCat("participation.trace.csv: cannot read ", path));
  }
  std::vector<std::vector<std::pair<double, double>>> windows(num_clients);
  std::string line;
  size_t line_no = 0;
  bool saw_header = false;
  auto error = [&](absl::string_view what) {
    return absl::InvalidArgumentError(absl::StrCat(path, ":", line_no, ": ", what));
  };
  while (std::getline(in, line)) {
    ++line_no;
    absl::string_view text = absl::StripAsciiWhitespace(line);
    if (text.empty()) continue;
    std::vector<absl::string_view> fields = absl::StrSplit(text, ',');
    for (absl::string_view& f : fields) f = absl::StripAsciiWhitespace(f);
    if (!saw_header) {
      if (fields.size() != 3 || fields[0] != "client" || fields[1] != "start_s" ||
          fields[2] != "end_s") {
        return error(absl::StrCat("expected the header 'client,start_s,end_s', got '", text, "'"));
      }
      saw_header = true;
      continue;
    }
    if (fields.size() != 3) {
      return error(absl::StrCat("expected 3 fields (client,start_s,end_s), got ", fields.size()));
    }
    int64_t client = 0;
    if (!absl::SimpleAtoi(fields[0], &client)) {
      return error(absl::StrCat("client '", fields[0], "' is not an integer"));
    }
    if (client < 0 || static_cast<uint64_t>(client) >= num_clients) {
      return error(
          absl::StrCat("unknown client id ", client, " (num_clients is ", num_clients, ")"));
    }
    double start = 0, end = 0;
    if (!absl::SimpleAtod(fields[1], &start) || !std::isfinite(start)) {
      return error(absl::StrCat("start_s '", fields[1], "' is not a finite number"));
    }
    if (!absl::SimpleAtod(fields[2], &end) || !std::isfinite(end)) {
      return error(absl::StrCat("end_s '", fields[2], "' is not a finite number"));
    }
    if (start < 0) return error(absl::StrCat("start_s ", start, " is negative"));
    if (!(end > start)) {
      return error(absl::StrCat("end_s ", end, " is not after start_s ", start));
    }
    windows[static_cast<size_t>(client)].emplace_back(start, end);
  }
  if (!saw_header) {
    line_no = std::max<size_t>(line_no, 1);
    return error("empty file: expected the header 'client,start_s,end_s'");
  }
  MergeWindows(windows);
  return windows;
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
      p = LabelCorrelated(prob.label_correlated(), num_clients, label_distributions, seed);
    } else {
      p = SampleDistribution(prob.distribution(), num_clients, seed);
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
      absl::StatusOr<std::vector<std::vector<std::pair<double, double>>>> w =
          ReadTrace(ResolvePath(config.trace().csv(), scenario_dir), num_clients);
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

// ---------------------------------------------------------------- changes

std::unique_ptr<ParticipationModel::ChangeStream> ParticipationModel::Changes(double after) const {
  return std::unique_ptr<ChangeStream>(new ChangeStream(this, after));
}

ParticipationModel::ChangeStream::~ChangeStream() = default;

ParticipationModel::ChangeStream::ChangeStream(const ParticipationModel* model, double after)
    : model_(model) {
  if (!model->time_based()) return;
  const size_t n = model->num_clients_;
  if (model->kind_ == Kind::kTrace) {
    std::vector<Entry> entries;
    for (size_t i = 0; i < n; ++i) {
      const auto& w = model->windows_[i];
      // The first window that ends after `after`; its start or its end is
      // the first boundary after `after`.
      auto it = std::upper_bound(
          w.begin(), w.end(), after,
          [](double v, const std::pair<double, double>& x) { return v < x.second; });
      if (it == w.end()) continue;
      const uint64_t j = static_cast<uint64_t>(it - w.begin());
      if (it->first > after) {
        entries.push_back(Entry{it->first, static_cast<ClientId>(i), 2 * j, false});
      } else if (std::isfinite(it->second)) {  // an infinite end never comes
        entries.push_back(Entry{it->second, static_cast<ClientId>(i), 2 * j + 1, false});
      }
    }
    heap_ = decltype(heap_)(std::greater<Entry>(), std::move(entries));
    return;
  }
  const uint64_t r0 = model->RoundAt(after);
  state_.resize(n);
  if (model->kind_ == Kind::kMarkov) {
    cursor_round_.resize(n);
    cursor_state_.resize(n);
  }
  for (size_t i = 0; i < n; ++i) {
    const ClientId c = static_cast<ClientId>(i);
    bool s;
    if (model->kind_ == Kind::kMarkov) {
      cursor_round_[i] = 0;
      cursor_state_[i] = model->MarkovStep(c, 0, model->MarkovInitial(c));
      s = MarkovState(c, r0);
    } else {
      s = model->InRound(c, r0);
    }
    state_[i] = s;
    ScheduleRound(c, r0, s);
  }
}

bool ParticipationModel::ChangeStream::MarkovState(ClientId c, uint64_t round) {
  // The stream only moves forward, so its cursor never needs checkpoints.
  while (cursor_round_[c] < round) {
    ++cursor_round_[c];
    cursor_state_[c] = model_->MarkovStep(c, cursor_round_[c], cursor_state_[c]);
  }
  return cursor_state_[c];
}

void ParticipationModel::ChangeStream::ScheduleRound(ClientId c, uint64_t round, bool state) {
  const ParticipationModel& m = *model_;
  const double round_s = m.round_s_;
  switch (m.kind_) {
    case Kind::kCyclic: {
      const uint64_t next = m.CyclicNextChange(c, round);
      heap_.push(Entry{static_cast<double>(next) * round_s, c, next, false});
      return;
    }
    case Kind::kBernoulli:
      if (m.p_[c] <= 0 || m.p_[c] >= 1) return;  // constant
      break;
    case Kind::kMarkov:
      if (!m.MarkovCanLeave(c, state)) return;  // absorbed
      break;
    default:
      return;
  }
  for (uint64_t r = round + 1; r <= round + kMaxScan; ++r) {
    const bool s = m.kind_ == Kind::kMarkov ? MarkovState(c, r) : m.InRound(c, r);
    if (s != state) {
      heap_.push(Entry{static_cast<double>(r) * round_s, c, r, false});
      return;
    }
  }
  // No change yet: park a probe at the first unscanned round. Its time is no
  // later than any change it stands for, so the (time, client) order holds.
  const uint64_t next = round + kMaxScan + 1;
  heap_.push(Entry{static_cast<double>(next) * round_s, c, next, true});
}

std::optional<AvailabilityChange> ParticipationModel::ChangeStream::Next() {
  while (!heap_.empty()) {
    const Entry e = heap_.top();
    heap_.pop();
    if (model_->kind_ == Kind::kTrace) {
      const auto& w = model_->windows_[e.client];
      const bool available = e.pos % 2 == 0;
      const uint64_t next = e.pos + 1;
      if (next < 2 * w.size()) {
        const auto& win = w[next / 2];
        const double t = next % 2 == 0 ? win.first : win.second;
        if (std::isfinite(t)) heap_.push(Entry{t, e.client, next, false});
      }
      return AvailabilityChange{e.time, e.client, available};
    }
    if (e.probe) {
      ScheduleRound(e.client, e.pos - 1, state_[e.client]);
      continue;
    }
    const bool available = !state_[e.client];
    state_[e.client] = available;
    ScheduleRound(e.client, e.pos, available);
    return AvailabilityChange{e.time, e.client, available};
  }
  return std::nullopt;
}

}  // namespace fedsim
