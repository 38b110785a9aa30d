#include "sim/event_source.h"

#include <algorithm>
#include <deque>
#include <utility>
#include <vector>

#include "util/status_macros.h"

namespace fedsim {
namespace {

class VirtualEventSource final : public EventSource {
 public:
  explicit VirtualEventSource(Clock* clock) : clock_(clock), start_(clock->Now()) {}
  bool queues_completions() const override { return true; }
  absl::StatusOr<std::optional<NextEvent>> Next(EventQueue& queue, VirtualTime* now,
                                                bool tasks_in_flight) override {
    (void)tasks_in_flight;
    if (queue.empty()) return std::optional<NextEvent>();
    Event e = queue.Pop();
    if (e.kind == EventKind::kTimer) {
      // A completion that ties with this timer up to rounding goes first, at
      // the timer's time (see the file comment); the timer goes back into the
      // queue as it was (same time and sequence number), so every tie goes
      // before it and a checkpoint taken meanwhile still holds it.
      if (std::optional<Event> tie = PopTie(queue, e)) {
        queue.Unpop(e);
        e = *tie;
      }
    }
    *now = e.time;
    return std::optional<NextEvent>(NextEvent{e, std::nullopt});
  }
  double WallSeconds() const override { return clock_->SecondsSince(start_); }

 private:
  // The first queued completion (in queue order) that was queued before
  // `timer` and is due after it by at most TimerTieTolerance, moved onto the
  // timer's time; other events in that span stay queued as they were.
  static std::optional<Event> PopTie(EventQueue& queue, const Event& timer) {
    const VirtualTime limit = timer.time + TimerTieTolerance(timer.time);
    std::vector<Event> skipped;
    std::optional<Event> tie;
    while (!queue.empty() && queue.top().time <= limit) {
      Event e = queue.Pop();
      if (e.kind == EventKind::kTaskFinish && e.seq < timer.seq && e.time > timer.time) {
        tie = e;
        tie->time = timer.time;
        break;
      }
      skipped.push_back(e);
    }
    for (const Event& e : skipped) queue.Unpop(e);
    return tie;
  }

  Clock* clock_;
  absl::Time start_;
};

class WallEventSource final : public EventSource {
 public:
  WallEventSource(Clock* clock, Transport* transport, std::function<bool()> stop,
                  absl::Duration poll)
      : clock_(clock),
        transport_(transport),
        stop_(std::move(stop)),
        poll_(poll),
        start_(clock->Now()) {}
  bool queues_completions() const override { return false; }

  absl::StatusOr<std::optional<NextEvent>> Next(EventQueue& queue, VirtualTime* now,
                                                bool tasks_in_flight) override {
    while (true) {
      if (stop_ && stop_()) return std::optional<NextEvent>();
      // Every client's state the first time, then each change as it
      // happened (one event each, as a recorded schedule replays them). The
      // log is taken before the look, so nothing falls between the two.
      const std::vector<std::pair<ClientId, bool>> changes = transport_->TakeConnectionChanges();
      const std::optional<std::vector<bool>> connected = transport_->ConnectedClients();
      if (connected.has_value() && !looked_) {
        looked_ = true;
        for (size_t c = 0; c < connected->size(); ++c) {
          changed_.push_back({static_cast<ClientId>(c), (*connected)[c]});
        }
      } else {
        changed_.insert(changed_.end(), changes.begin(), changes.end());
      }
      if (!changed_.empty()) {
        const auto [client, on] = changed_.front();
        changed_.pop_front();
        *now = std::max(*now, WallSeconds());
        return std::optional<NextEvent>(
            NextEvent{Event{*now, 0, EventKind::kConnections, client, on}, std::nullopt});
      }
      absl::Time deadline = clock_->Now() + poll_;
      if (!queue.empty()) deadline = std::min(deadline, start_ + absl::Seconds(queue.top().time));
      FEDSIM_ASSIGN_OR_RETURN(std::optional<TaskResult> r, transport_->AwaitAny(deadline));
      if (r.has_value()) {
        *now = std::max(*now, WallSeconds());
        NextEvent next{Event{*now, 0, EventKind::kTaskFinish, r->id, false}, std::move(r)};
        return std::optional<NextEvent>(std::move(next));
      }
      if (!queue.empty() && WallSeconds() >= queue.top().time) {
        NextEvent next{queue.Pop(), std::nullopt};
        *now = std::max(*now, next.event.time);
        return std::optional<NextEvent>(std::move(next));
      }
      // Nothing can happen any more, unless a client that is away comes back.
      const bool someone_away =
          connected.has_value() &&
          std::find(connected->begin(), connected->end(), false) != connected->end();
      if (queue.empty() && !tasks_in_flight && !someone_away) return std::optional<NextEvent>();
    }
  }
  double WallSeconds() const override { return clock_->SecondsSince(start_); }

 private:
  Clock* clock_;
  Transport* transport_;
  std::function<bool()> stop_;
  absl::Duration poll_;
  absl::Time start_;
  bool looked_ = false;                            // at the transport's connected clients, once
  std::deque<std::pair<ClientId, bool>> changed_;  // not yet handed out
};

}  // namespace

std::unique_ptr<EventSource> NewVirtualEventSource(Clock* clock) {
  return std::make_unique<VirtualEventSource>(clock);
}

std::unique_ptr<EventSource> NewWallEventSource(Clock* clock, Transport* transport,
                                                std::function<bool()> stop, absl::Duration poll) {
  return std::make_unique<WallEventSource>(clock, transport, std::move(stop), poll);
}

}  // namespace fedsim
