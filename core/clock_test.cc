#include "core/clock.h"

#include <atomic>
#include <thread>

#include "absl/synchronization/notification.h"

#include "gtest/gtest.h"

namespace fedsim {
namespace {

TEST(FakeClockTest, NowMovesOnlyWhenAdvanced) {
  FakeClock clock;
  const absl::Time t0 = clock.Now();
  EXPECT_EQ(clock.Now(), t0);
  clock.Advance(absl::Seconds(3));
  EXPECT_EQ(clock.Now() - t0, absl::Seconds(3));
  clock.Advance(-absl::Seconds(1));  // never backwards
  EXPECT_EQ(clock.Now() - t0, absl::Seconds(3));
}

TEST(FakeClockTest, TimedWaitEndsExactlyAtTheDeadline) {
  FakeClock clock;
  absl::Mutex mu;
  bool flag = false;
  std::atomic<bool> returned{false};
  bool result = true;
  std::thread waiter([&] {
    absl::MutexLock lock(&mu);
    result = clock.AwaitWithTimeout(&mu, absl::Condition(&flag), absl::Seconds(5));
    returned = true;
  });
  ASSERT_TRUE(clock.BlockUntilTimedWaiters(1));
  clock.Advance(absl::Seconds(4));
  // Still waiting: 4 s < 5 s. (No sleep needed: the waiter's condition was
  // re-evaluated inside Advance.)
  EXPECT_EQ(clock.timed_waiters(), 1);
  EXPECT_FALSE(returned.load());
  clock.Advance(absl::Seconds(1));
  waiter.join();
  EXPECT_TRUE(returned.load());
  EXPECT_FALSE(result);  // timed out, condition false
  EXPECT_EQ(clock.timed_waiters(), 0);
}

TEST(FakeClockTest, ConditionWakesWithoutTimeMoving) {
  FakeClock clock;
  absl::Mutex mu;
  bool flag = false;
  bool result = false;
  std::thread waiter([&] {
    absl::MutexLock lock(&mu);
    result = clock.AwaitWithTimeout(&mu, absl::Condition(&flag), absl::Hours(1));
  });
  ASSERT_TRUE(clock.BlockUntilTimedWaiters(1));
  {
    absl::MutexLock lock(&mu);
    flag = true;
  }
  waiter.join();
  EXPECT_TRUE(result);
}

TEST(FakeClockTest, SleepUntilReturnsWhenTimeArrives) {
  FakeClock clock;
  const absl::Time wake = clock.Now() + absl::Milliseconds(250);
  std::atomic<bool> woke{false};
  std::thread sleeper([&] {
    clock.SleepUntil(wake);
    woke = true;
  });
  ASSERT_TRUE(clock.BlockUntilTimedWaiters(1));
  clock.Advance(absl::Milliseconds(249));
  EXPECT_FALSE(woke.load());
  clock.Advance(absl::Milliseconds(1));
  sleeper.join();
  EXPECT_TRUE(woke.load());
}

// After an Advance, BlockUntilTimedWaiters waits for the woken thread to
// reach its next timed wait: a waiter whose deadline passed no longer counts,
// even before its thread has run again.
TEST(FakeClockTest, WokenWaitersStopCountingAtOnce) {
  FakeClock clock;
  std::atomic<int> naps{0};
  std::thread sleeper([&] {
    for (int i = 0; i < 3; ++i) {
      clock.SleepFor(absl::Seconds(1));
      ++naps;
    }
  });
  for (int i = 1; i <= 3; ++i) {
    ASSERT_TRUE(clock.BlockUntilTimedWaiters(1));
    EXPECT_EQ(naps.load(), i - 1);
    clock.Advance(absl::Seconds(1));
  }
  sleeper.join();
  EXPECT_EQ(naps.load(), 3);
}

// Regression: BlockUntilTimedWaiters returns once a waiter has registered,
// which can be before it blocks; an Advance in that window must still wake
// it (it once was lost: the waiter held its mutex, so Advance skipped it).
TEST(FakeClockTest, AdvanceRightAfterTheWaiterRegistersIsNotLost) {
  FakeClock clock;
  absl::Mutex mu;
  bool stop = false;
  // A second, long waiter on the same mutex (as a server's reaper is).
  std::thread reaper([&] {
    absl::MutexLock lock(&mu);
    while (!stop) clock.AwaitWithTimeout(&mu, absl::Condition(&stop), absl::Hours(1000));
  });
  ASSERT_TRUE(clock.BlockUntilTimedWaiters(1));
  for (int i = 0; i < 200; ++i) {
    bool never = false;
    absl::Notification woke;
    std::thread waiter([&] {
      absl::MutexLock lock(&mu);
      clock.AwaitWithTimeout(&mu, absl::Condition(&never), absl::Seconds(1));
      woke.Notify();
    });
    ASSERT_TRUE(clock.BlockUntilTimedWaiters(2));
    clock.Advance(absl::Seconds(1));
    // The real-time bound only turns a lost wakeup into a failure.
    const bool ok = woke.WaitForNotificationWithTimeout(absl::Seconds(10));
    if (!ok) clock.Advance(absl::Seconds(1));  // let it go so the test can end
    waiter.join();
    ASSERT_TRUE(ok) << "lost wakeup in round " << i;
  }
  {
    absl::MutexLock lock(&mu);
    stop = true;
  }
  reaper.join();
}

TEST(SystemClockTest, MovesForward) {
  const absl::Time a = SystemClock()->Now();
  SystemClock()->SleepFor(absl::Milliseconds(2));
  EXPECT_GE(SystemClock()->Now() - a, absl::Milliseconds(2));
}

}  // namespace
}  // namespace fedsim
