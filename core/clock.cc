#include "core/clock.h"

#include <algorithm>
#include <thread>

#include "absl/time/clock.h"

namespace fedsim {
namespace {

class RealClock final : public Clock {
 public:
  absl::Time Now() const override { return absl::Now(); }
  bool AwaitWithDeadline(absl::Mutex* mu, const absl::Condition& cond,
                         absl::Time deadline) override {
    if (deadline == absl::InfiniteFuture()) {
      mu->Await(cond);
      return true;
    }
    return mu->AwaitWithDeadline(cond, deadline);
  }
  void SleepUntil(absl::Time t) override {
    const absl::Duration left = t - absl::Now();
    if (left > absl::ZeroDuration()) absl::SleepFor(left);
  }
};

}  // namespace

Clock* SystemClock() {
  static RealClock* clock = new RealClock();
  return clock;
}

FakeClock::FakeClock(absl::Time start) : now_ns_(absl::ToUnixNanos(start)) {}

absl::Time FakeClock::Now() const { return absl::FromUnixNanos(now_ns_.load()); }

void FakeClock::Register(absl::Mutex* mu, absl::Time deadline) {
  absl::MutexLock lock(&registry_mu_);
  waiters_.push_back({mu, deadline});
}

void FakeClock::Unregister(absl::Mutex* mu, absl::Time deadline) {
  absl::MutexLock lock(&registry_mu_);
  auto it = std::find_if(waiters_.begin(), waiters_.end(),
                         [&](const Waiter& w) { return w.mu == mu && w.deadline == deadline; });
  if (it != waiters_.end()) waiters_.erase(it);
}

int FakeClock::PendingTimedLocked() const {
  // A waiter whose deadline has passed is as good as awake: counting it
  // until its thread gets round to unregistering would let a test advance
  // again before the code under test reacted to the last advance.
  const absl::Time now = Now();
  int n = 0;
  for (const Waiter& w : waiters_) {
    n += (w.deadline != absl::InfiniteFuture() && w.deadline > now) ? 1 : 0;
  }
  return n;
}

bool FakeClock::AwaitWithDeadline(absl::Mutex* mu, const absl::Condition& cond,
                                  absl::Time deadline) {
  struct Arg {
    const absl::Condition* cond;
    const FakeClock* clock;
    absl::Time deadline;
  } arg{&cond, this, deadline};
  // Re-evaluated by absl whenever *mu is released, including by Advance().
  absl::Condition either(
      +[](Arg* a) { return a->cond->Eval() || a->clock->Now() >= a->deadline; }, &arg);
  Register(mu, deadline);
  mu->Await(either);
  Unregister(mu, deadline);
  return cond.Eval();
}

void FakeClock::SleepUntil(absl::Time t) {
  absl::MutexLock lock(&sleep_mu_);
  struct Never {
    static bool False(void*) { return false; }
  };
  AwaitWithDeadline(&sleep_mu_, absl::Condition(&Never::False, nullptr), t);
}

void FakeClock::Advance(absl::Duration d) {
  if (d < absl::ZeroDuration()) d = absl::ZeroDuration();
  now_ns_.fetch_add(absl::ToInt64Nanoseconds(d));
  // Every waiter must see the new time. Releasing a waiter's mutex makes absl
  // re-evaluate the conditions of the threads waiting on it, which read the
  // new time. A mutex we cannot take may be held by a waiter that evaluated
  // its condition before the change and has not blocked yet (it registers
  // first, then waits): no later Unlock would look at it again, so we retry
  // until each registered mutex has been taken once after the change.
  // Holding registry_mu_ keeps the registered mutexes alive meanwhile (a
  // waiter unregisters before it returns); it is dropped between rounds
  // because a thread holding a waiter's mutex may need it to register.
  std::vector<absl::Mutex*> touched;
  const absl::Time give_up = absl::Now() + absl::Seconds(1);
  while (true) {
    bool busy = false;
    {
      absl::MutexLock lock(&registry_mu_);
      for (const Waiter& w : waiters_) {
        if (std::find(touched.begin(), touched.end(), w.mu) != touched.end()) continue;
        if (w.mu->TryLock()) {
          w.mu->Unlock();
          touched.push_back(w.mu);
        } else {
          busy = true;
        }
      }
    }
    // A mutex held for long (by the caller of Advance, say) is re-checked by
    // its holder's own Unlock; do not wait for it forever.
    if (!busy || absl::Now() >= give_up) return;
    std::this_thread::yield();
  }
}

bool FakeClock::BlockUntilTimedWaiters(int n, absl::Duration real_timeout) const {
  absl::MutexLock lock(&registry_mu_);
  struct Arg {
    const FakeClock* c;
    int n;
  } arg{this, n};
  return registry_mu_.AwaitWithTimeout(
      absl::Condition(
          +[](Arg* a) ABSL_NO_THREAD_SAFETY_ANALYSIS { return a->c->PendingTimedLocked() >= a->n; },
          &arg),
      real_timeout);
}

int FakeClock::timed_waiters() const {
  absl::MutexLock lock(&registry_mu_);
  return PendingTimedLocked();
}

}  // namespace fedsim
