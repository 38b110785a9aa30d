// The virtual event source's order, including ties with timers up to rounding.
#include "sim/event_source.h"

#include <cmath>
#include <vector>

#include "gtest/gtest.h"

namespace fedsim {
namespace {

struct Popped {
  EventKind kind;
  uint64_t arg;
  VirtualTime time;  // *now after the pop
};

std::vector<Popped> Drain(EventQueue& queue) {
  std::unique_ptr<EventSource> source = NewVirtualEventSource(SystemClock());
  std::vector<Popped> out;
  VirtualTime now = 0;
  while (true) {
    absl::StatusOr<std::optional<NextEvent>> next = source->Next(queue, &now, false);
    EXPECT_TRUE(next.ok());
    if (!next.ok() || !next->has_value()) break;
    EXPECT_EQ((*next)->event.time, now);
    out.push_back({(*next)->event.kind, (*next)->event.arg, now});
  }
  return out;
}

TEST(VirtualEventSourceTest, TimeThenSequenceOrder) {
  EventQueue q;
  q.Push(2.0, EventKind::kTaskFinish, 1);
  q.Push(1.0, EventKind::kTimer);
  q.Push(2.0, EventKind::kTaskFinish, 2);
  std::vector<Popped> p = Drain(q);
  ASSERT_EQ(p.size(), 3u);
  EXPECT_EQ(p[0].kind, EventKind::kTimer);
  EXPECT_EQ(p[1].arg, 1u);
  EXPECT_EQ(p[2].arg, 2u);
}

TEST(VirtualEventSourceTest, CompletionsAFewUlpsAfterATimerGoFirstAtItsTime) {
  // A window boundary and a completion one ulp after it (dispatch time +
  // duration rounded the other way): a tie up to rounding.
  const double boundary = 4 * 0.2;
  const double due = std::nextafter(boundary, 2.0);
  EventQueue q;
  q.Push(due, EventKind::kTaskFinish, 7);                       // queued first
  q.Push(std::nextafter(due, 2.0), EventKind::kTaskFinish, 8);  // two ulps: also a tie
  q.Push(boundary, EventKind::kTimer);
  q.Push(due, EventKind::kTaskFinish, 9);               // queued after the timer
  q.Push(boundary + 1e-6, EventKind::kTaskFinish, 10);  // beyond the tolerance
  std::vector<Popped> p = Drain(q);
  ASSERT_EQ(p.size(), 5u);
  EXPECT_EQ(p[0].arg, 7u);
  EXPECT_EQ(p[0].time, boundary);  // put on the timer
  EXPECT_EQ(p[1].arg, 8u);
  EXPECT_EQ(p[1].time, boundary);
  EXPECT_EQ(p[2].kind, EventKind::kTimer);
  EXPECT_EQ(p[2].time, boundary);
  EXPECT_EQ(p[3].arg, 9u);  // not a tie: it was dispatched after the timer was set
  EXPECT_EQ(p[3].time, due);
  EXPECT_EQ(p[4].arg, 10u);
  EXPECT_EQ(p[4].time, boundary + 1e-6);
}

// While a tie is being handled the timer waits in the queue itself, as it was
// (time and sequence number), so a checkpoint of the queue taken then (after a
// commit the tie completed) still holds it and a resumed run fires it.
TEST(VirtualEventSourceTest, TimerWaitsBehindItsTieInTheQueue) {
  const double boundary = 3 * 0.1;
  EventQueue q;
  q.Push(std::nextafter(boundary, 1.0), EventKind::kTaskFinish, 7);
  q.Push(boundary, EventKind::kTimer);
  const uint64_t timer_seq = 1;  // pushed second
  std::unique_ptr<EventSource> source = NewVirtualEventSource(SystemClock());
  VirtualTime now = 0;
  absl::StatusOr<std::optional<NextEvent>> next = source->Next(q, &now, false);
  ASSERT_TRUE(next.ok() && next->has_value());
  EXPECT_EQ((*next)->event.arg, 7u);
  const std::vector<Event> contents = q.Contents();
  ASSERT_EQ(contents.size(), 1u);
  EXPECT_EQ(contents[0].kind, EventKind::kTimer);
  EXPECT_EQ(contents[0].seq, timer_seq);
  EXPECT_EQ(contents[0].time, boundary);
  // A fresh source on the restored queue (a resumed run) fires it.
  EventQueue resumed;
  resumed.Restore(contents, q.next_seq());
  std::vector<Popped> p = Drain(resumed);
  ASSERT_EQ(p.size(), 1u);
  EXPECT_EQ(p[0].kind, EventKind::kTimer);
}

TEST(VirtualEventSourceTest, OtherEventsAfterATimerKeepTheirTime) {
  EventQueue q;
  q.Push(1.0 + 1e-15, EventKind::kEvaluate);
  q.Push(1.0, EventKind::kTimer);
  std::vector<Popped> p = Drain(q);
  ASSERT_EQ(p.size(), 2u);
  EXPECT_EQ(p[0].kind, EventKind::kTimer);
  EXPECT_EQ(p[1].kind, EventKind::kEvaluate);
  EXPECT_EQ(p[1].time, 1.0 + 1e-15);
}

TEST(VirtualEventSourceTest, TieToleranceScalesWithTime) {
  EXPECT_EQ(TimerTieTolerance(0.5), 1e-12);
  EXPECT_EQ(TimerTieTolerance(-3.0), 3e-12);
  EXPECT_EQ(TimerTieTolerance(5000.0), 5e-9);
  // Wide enough for rounding at the paper's horizon (T = 5000).
  EXPECT_GT(TimerTieTolerance(5000.0), 1000 * (std::nextafter(5000.0, 6000.0) - 5000.0));
}

}  // namespace
}  // namespace fedsim
