#include "core/clock.h"

#include <atomic>
#include <thread>

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

TEST(SystemClockTest, MovesForward) {
  const absl::Time a = SystemClock()->Now();
  SystemClock()->SleepFor(absl::Milliseconds(2));
  EXPECT_GE(SystemClock()->Now() - a, absl::Milliseconds(2));
}

}  // namespace
}  // namespace fedsim
