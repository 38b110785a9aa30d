// Clock: the one source of real time in fedsim (LevelDB's Env idea, for time).
//
// Nothing outside core/clock.cc calls absl::Now() or sleeps on the system
// clock: code that needs the time or a timed wait takes a Clock*. Production
// passes SystemClock(); tests pass a FakeClock and move time by hand, so
// timeouts, heartbeats and deadlines are tested exactly, without real sleeps.
//
// Timed waits go through AwaitWithDeadline, which works like
// absl::Mutex::AwaitWithDeadline but measures the deadline on this clock.
//
// Thread safety: every method is thread-safe.
#ifndef FEDSIM_CORE_CLOCK_H_
#define FEDSIM_CORE_CLOCK_H_

#include <atomic>
#include <cstdint>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"

namespace fedsim {

class Clock {
 public:
  virtual ~Clock() = default;

  virtual absl::Time Now() const = 0;

  // Blocks until `cond` holds or Now() >= deadline, whichever comes first,
  // releasing *mu while it waits (as absl::Mutex::Await does). Returns the
  // value of `cond` on return. absl::InfiniteFuture() waits for `cond` only.
  // REQUIRES: *mu is held by the caller; cond only reads state guarded by *mu.
  virtual bool AwaitWithDeadline(absl::Mutex* mu, const absl::Condition& cond,
                                 absl::Time deadline) = 0;

  // Blocks until Now() >= t.
  virtual void SleepUntil(absl::Time t) = 0;

  bool AwaitWithTimeout(absl::Mutex* mu, const absl::Condition& cond, absl::Duration timeout) {
    return AwaitWithDeadline(mu, cond, Now() + timeout);
  }
  void SleepFor(absl::Duration d) { SleepUntil(Now() + d); }
  // Seconds since `start` on this clock.
  double SecondsSince(absl::Time start) const { return absl::ToDoubleSeconds(Now() - start); }
};

// The process's real clock. Never null; lives for the whole process.
Clock* SystemClock();

// A clock that moves only when told to. Starts at `start`.
//
// Waiters (AwaitWithDeadline, SleepUntil) whose deadline Advance() passes
// wake up; waiters whose condition becomes true wake as with a real clock.
class FakeClock final : public Clock {
 public:
  explicit FakeClock(absl::Time start = absl::UnixEpoch() + absl::Hours(24 * 365 * 50));

  absl::Time Now() const override;
  bool AwaitWithDeadline(absl::Mutex* mu, const absl::Condition& cond,
                         absl::Time deadline) override;
  void SleepUntil(absl::Time t) override;

  // Moves time forward by d (>= 0) and wakes the waiters it concerns.
  void Advance(absl::Duration d);

  // Blocks (in real time, up to `real_timeout`) until at least n threads are
  // blocked in AwaitWithDeadline or SleepUntil with a deadline that has not
  // passed yet, so a test knows the code under test reached its timed wait
  // before advancing. A waiter whose deadline Advance() passed stops
  // counting at once (before it even runs again), so after an Advance this
  // waits for the woken threads to come back to their next timed wait.
  // Returns false on timeout.
  bool BlockUntilTimedWaiters(int n, absl::Duration real_timeout = absl::Seconds(30)) const;

  // Threads blocked right now with a finite deadline that has not passed.
  int timed_waiters() const;

 private:
  struct Waiter {
    absl::Mutex* mu;
    absl::Time deadline;  // absl::InfiniteFuture() for untimed waits
  };
  void Register(absl::Mutex* mu, absl::Time deadline);
  void Unregister(absl::Mutex* mu, absl::Time deadline);
  int PendingTimedLocked() const ABSL_EXCLUSIVE_LOCKS_REQUIRED(registry_mu_);

  std::atomic<int64_t> now_ns_;
  // Guards waiters_; never held while waiting on a waiter's mutex.
  mutable absl::Mutex registry_mu_;
  std::vector<Waiter> waiters_ ABSL_GUARDED_BY(registry_mu_);
  absl::Mutex sleep_mu_;  // the mutex SleepUntil waits on
};

}  // namespace fedsim

#endif  // FEDSIM_CORE_CLOCK_H_
