// ParticipationModel::ChangeStream: the ordered stream of availability
// changes (sim/participation.h), apart from the processes it walks.
#include <algorithm>
#include <cmath>
#include <functional>
#include <utility>

#include "sim/participation.h"

namespace fedsim {
namespace {

// Rounds a ChangeStream scans for one client before it parks a probe.
constexpr uint64_t kMaxScan = 1024;

}  // namespace

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
