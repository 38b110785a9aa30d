#include "core/clock.h"

#include <algorithm>

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

void FakeClock::Register(absl::Mutex* mu, bool timed) {
  absl::MutexLock lock(&registry_mu_);
  waiters_.push_back({mu, timed});
  if (timed) ++timed_;
}

void FakeClock::Unregister(absl::Mutex* mu, bool timed) {
  absl::MutexLock lock(&registry_mu_);
  auto it = std::find_if(waiters_.begin(), waiters_.end(),
                         [&](const Waiter& w) { return w.mu == mu && w.timed == timed; });
  if (it != waiters_.end()) waiters_.erase(it);
  if (timed) --timed_;
}

bool FakeClock::AwaitWithDeadline(absl::Mutex* mu, const absl::Condition& cond,
                                  absl::Time deadline) {
  const bool timed = deadline != absl::InfiniteFuture();
  struct Arg {
    const absl::Condition* cond;
    const FakeClock* clock;
    absl::Time deadline;
  } arg{&cond, this, deadline};
  // Re-evaluated by absl whenever *mu is released, including by Advance().
  absl::Condition either(
      +[](Arg* a) { return a->cond->Eval() || a->clock->Now() >= a->deadline; }, &arg);
  Register(mu, timed);
  mu->Await(either);
  Unregister(mu, timed);
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
  // Releasing a waiter's mutex makes absl re-evaluate its condition, which
  // reads the new time. Holding registry_mu_ keeps every registered mutex
  // alive meanwhile (a waiter unregisters before it returns). A mutex we
  // cannot take is held by someone whose own Unlock re-evaluates it.
  absl::MutexLock lock(&registry_mu_);
  for (const Waiter& w : waiters_) {
    if (w.mu->TryLock()) w.mu->Unlock();
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
          +[](Arg* a) ABSL_NO_THREAD_SAFETY_ANALYSIS { return a->c->timed_ >= a->n; }, &arg),
      real_timeout);
}

int FakeClock::timed_waiters() const {
  absl::MutexLock lock(&registry_mu_);
  return timed_;
}

}  // namespace fedsim
