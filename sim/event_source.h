// The engine's two clocks, as two strategies behind one interface, so the
// event loop itself never asks which clock it runs on.
//
//  - Virtual (simulation): events are popped from the queue in (time,
//    sequence) order; a task's completion is an event at a time known when it
//    was dispatched, and the engine then waits (in real time) for exactly
//    that task's result from the transport.
//    Ties with timers up to rounding: a completion is due at dispatch time +
//    duration, a rule's timer at whatever the rule computed (FedFix: origin +
//    (n+1) Delta), so a task that ends exactly at a timer in exact arithmetic
//    may be due a few ulps after it. A completion queued before a timer and
//    due after it by at most TimerTieTolerance(timer time) is therefore
//    handled before the timer, at the timer's time: its arrival is put on
//    the timer, as an exact tie would be.
//  - Wall (deployment): time is seconds since the start on a Clock; results
//    are handled when they arrive (Transport::AwaitAny), timers fire when the
//    clock reaches them, and completion events are never queued. On a
//    transport that tracks connected clients (a deployment whose clients
//    bring their own data), a change in who is connected is an event too,
//    and the source waits for one instead of reporting that nothing is left
//    while a client is away.
//
// Not thread-safe; the engine's.
#ifndef FEDSIM_SIM_EVENT_SOURCE_H_
#define FEDSIM_SIM_EVENT_SOURCE_H_

#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <queue>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "core/clock.h"
#include "core/task.h"
#include "core/transport.h"

namespace fedsim {

enum class EventKind : uint8_t {
  kTaskFinish,
  kTimer,
  kEvaluate,
  kAvailability,
  kScripted,
  kStop,
  // Wall clock only, never queued: client `arg` connected (`flag`) or went
  // away (Transport::ConnectedClients); the engine makes its availability
  // match. The first look at the transport reports every client.
  kConnections,
};

struct Event {
  VirtualTime time = 0;
  uint64_t seq = 0;
  EventKind kind = EventKind::kTimer;
  uint64_t arg = 0;   // task id, scripted index, client id
  bool flag = false;  // availability: becomes available
  // Earliest first; ties by sequence number.
  bool operator>(const Event& o) const {
    if (time != o.time) return time > o.time;
    return seq > o.seq;
  }
};

// Events ordered by (time, sequence number of Push).
class EventQueue {
 public:
  void Push(VirtualTime t, EventKind kind, uint64_t arg = 0, bool flag = false) {
    queue_.push(Event{t, next_seq_++, kind, arg, flag});
  }
  bool empty() const { return queue_.empty(); }
  const Event& top() const { return queue_.top(); }
  Event Pop() {
    Event e = queue_.top();
    queue_.pop();
    return e;
  }
  // The queued events (in no particular order) and the next sequence number:
  // what a checkpoint stores.
  std::vector<Event> Contents() const {
    auto copy = queue_;
    std::vector<Event> out;
    while (!copy.empty()) {
      out.push_back(copy.top());
      copy.pop();
    }
    return out;
  }
  uint64_t next_seq() const { return next_seq_; }
  // Puts a popped event back as it was (same time and sequence number): an
  // event whose handling was interrupted before it changed anything.
  void Unpop(const Event& e) { queue_.push(e); }
  // Replaces the contents (a resumed run's queue).
  void Restore(const std::vector<Event>& events, uint64_t next_seq) {
    queue_ = {};
    for (const Event& e : events) queue_.push(e);
    next_seq_ = next_seq;
  }

 private:
  std::priority_queue<Event, std::vector<Event>, std::greater<Event>> queue_;
  uint64_t next_seq_ = 0;
};

// How far after a timer at `t` a completion still counts as a tie with it:
// 1e-12 x max(1, |t|) virtual seconds, about 4500 ulps of t and far below any
// duration a device model produces.
inline double TimerTieTolerance(VirtualTime t) { return 1e-12 * std::max(1.0, std::abs(t)); }

// What the loop handles next: an event, and for a wall-clock completion the
// result that came with it.
struct NextEvent {
  Event event;
  std::optional<TaskResult> arrived;
};

class EventSource {
 public:
  virtual ~EventSource() = default;
  // Whether task completions are queued as events at their scripted time
  // (virtual) or arrive by themselves (wall).
  virtual bool queues_completions() const = 0;
  // The next event, or nullopt when nothing is left (nothing queued and, for
  // the wall clock, nothing in flight) or a stop was requested. Sets *now to
  // the event's time. Errors are the transport's.
  virtual absl::StatusOr<std::optional<NextEvent>> Next(EventQueue& queue, VirtualTime* now,
                                                        bool tasks_in_flight) = 0;
  // Seconds of real time since the run started (timing.csv, the summary).
  virtual double WallSeconds() const = 0;
};

// `clock` must outlive the source. The virtual source reads the clock only
// for WallSeconds.
std::unique_ptr<EventSource> NewVirtualEventSource(Clock* clock);
// `stop` (may be null) is polled while waiting, so a stop request is seen
// within `poll` even when nothing happens.
std::unique_ptr<EventSource> NewWallEventSource(Clock* clock, Transport* transport,
                                                std::function<bool()> stop,
                                                absl::Duration poll = absl::Milliseconds(200));

}  // namespace fedsim

#endif  // FEDSIM_SIM_EVENT_SOURCE_H_
