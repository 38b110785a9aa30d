// Teaches ThreadSanitizer the happens-before edges of Abseil's
// synchronization primitives, which Debian builds without TSan.
//
// absl::Mutex, CondVar, Notification and BlockingCounter live in
// libabsl_synchronization.so, compiled without -fsanitize=thread: TSan sees
// none of their atomics or futex waits, so every access to data a Mutex
// guards would look like a race between two threads. This file, linked into
// every target of a FEDSIM_SANITIZE=thread build (cmake/FedsimSanitizers.cmake)
// and nowhere else, defines those classes' out-of-line members itself: each
// calls the library's own definition (found with dlsym(RTLD_NEXT)) and tells
// TSan what it just did: __tsan_acquire after a lock is taken or a wait
// returns, __tsan_release before a lock is released or a wait or notify
// begins. Definitions in the executable take precedence over the shared
// library's, for fedsim's calls and gRPC's alike.
//
// It hides no race: data touched without the Mutex is still reported. The
// symbol names are those of Debian 12's Abseil (20220623); with another
// Abseil a missing symbol aborts at the first call, saying which.
//
// Thread safety: the wrappers are as thread-safe as what they wrap.
#include <dlfcn.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <type_traits>

#include "absl/synchronization/blocking_counter.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "absl/time/time.h"

extern "C" void __tsan_acquire(void* addr);
extern "C" void __tsan_release(void* addr);

namespace {

#define FEDSIM_STR2(x) #x
#define FEDSIM_STR(x) FEDSIM_STR2(x)

// "_ZN4absl7debian3" + tail: the mangled name of absl::<inline ns>::<tail>.
void* Real(const char* tail) {
  const std::string ns = FEDSIM_STR(ABSL_OPTION_INLINE_NAMESPACE_NAME);
  const std::string name = std::string(tail[0] == 'K' ? "_ZNK4absl" : "_ZN4absl") +
                           std::to_string(ns.size()) + ns + (tail[0] == 'K' ? tail + 1 : tail);
  void* f = dlsym(RTLD_NEXT, name.c_str());
  if (f == nullptr) {
    std::fprintf(stderr, "tsan_absl: %s not found in Abseil\n", name.c_str());
    std::abort();
  }
  return f;
}

// The lock whose conditions this thread may evaluate inside the library
// call in progress: a waiter evaluates its own condition inside Await or
// LockWhen, and an unlocking thread its waiters' conditions inside Unlock,
// both after the wrapper's release. Condition::Eval (below) acquires and
// releases it around the evaluation so that what a condition reads is
// ordered with the lock's other critical sections.
thread_local void* eval_sync = nullptr;

class EvalScope {
 public:
  explicit EvalScope(void* sync) : saved_(eval_sync) { eval_sync = sync; }
  EvalScope(const EvalScope&) = delete;
  EvalScope& operator=(const EvalScope&) = delete;
  ~EvalScope() { eval_sync = saved_; }

 private:
  void* saved_;
};

// Calls `real`, the library's definition of a member (from Real), as a plain
// function taking `this` first, with TSan told about it:
//   Acquire: call, then acquire `sync` (a lock was taken, a wait ended);
//   Release: release `sync`, then call (a lock is given up, a notify);
//   ReleaseAcquire: both around the call (a wait that drops the lock).
template <typename R, typename... Args>
R Acquire(void* sync, void* real, Args... args) {
  EvalScope scope(sync);
  if constexpr (std::is_void_v<R>) {
    reinterpret_cast<R (*)(Args...)>(real)(args...);
    __tsan_acquire(sync);
  } else {
    R r = reinterpret_cast<R (*)(Args...)>(real)(args...);
    __tsan_acquire(sync);
    return r;
  }
}
template <typename R, typename... Args>
R Release(void* sync, void* real, Args... args) {
  EvalScope scope(sync);
  __tsan_release(sync);
  return reinterpret_cast<R (*)(Args...)>(real)(args...);
}
template <typename R, typename... Args>
R ReleaseAcquire(void* sync, void* real, Args... args) {
  __tsan_release(sync);
  return Acquire<R>(sync, real, args...);
}

// absl::Notification's flag, which the inline HasBeenNotified() reads with
// an (instrumented) acquire load: Notify releases on its address too.
struct NotificationLayout {
  absl::Mutex mutex;
  std::atomic<bool> notified_yet;
};
static_assert(sizeof(NotificationLayout) == sizeof(absl::Notification));

}  // namespace

namespace absl {
ABSL_NAMESPACE_BEGIN

// One line each: `real` is looked up once, on the first call.
#define FEDSIM_REAL(tail) static void* const real = Real(tail)

void Mutex::Lock() {
  FEDSIM_REAL("5Mutex4LockEv");
  Acquire<void>(this, real, this);
}
void Mutex::ReaderLock() {
  FEDSIM_REAL("5Mutex10ReaderLockEv");
  Acquire<void>(this, real, this);
}
bool Mutex::TryLock() {
  FEDSIM_REAL("5Mutex7TryLockEv");
  const bool got = reinterpret_cast<bool (*)(Mutex*)>(real)(this);
  if (got) __tsan_acquire(this);
  return got;
}
bool Mutex::ReaderTryLock() {
  FEDSIM_REAL("5Mutex13ReaderTryLockEv");
  const bool got = reinterpret_cast<bool (*)(Mutex*)>(real)(this);
  if (got) __tsan_acquire(this);
  return got;
}
void Mutex::Unlock() {
  FEDSIM_REAL("5Mutex6UnlockEv");
  Release<void>(this, real, this);
}
void Mutex::ReaderUnlock() {
  FEDSIM_REAL("5Mutex12ReaderUnlockEv");
  Release<void>(this, real, this);
}

// The LockWhen family returns holding the lock whatever it returns.
void Mutex::LockWhen(const Condition& cond) {
  FEDSIM_REAL("5Mutex8LockWhenERKNS0_9ConditionE");
  Acquire<void>(this, real, this, &cond);
}
void Mutex::ReaderLockWhen(const Condition& cond) {
  FEDSIM_REAL("5Mutex14ReaderLockWhenERKNS0_9ConditionE");
  Acquire<void>(this, real, this, &cond);
}
bool Mutex::LockWhenWithTimeout(const Condition& cond, Duration timeout) {
  FEDSIM_REAL("5Mutex19LockWhenWithTimeoutERKNS0_9ConditionENS0_8DurationE");
  return Acquire<bool>(this, real, this, &cond, timeout);
}
bool Mutex::ReaderLockWhenWithTimeout(const Condition& cond, Duration timeout) {
  FEDSIM_REAL("5Mutex25ReaderLockWhenWithTimeoutERKNS0_9ConditionENS0_8DurationE");
  return Acquire<bool>(this, real, this, &cond, timeout);
}
bool Mutex::LockWhenWithDeadline(const Condition& cond, Time deadline) {
  FEDSIM_REAL("5Mutex20LockWhenWithDeadlineERKNS0_9ConditionENS0_4TimeE");
  return Acquire<bool>(this, real, this, &cond, deadline);
}
bool Mutex::ReaderLockWhenWithDeadline(const Condition& cond, Time deadline) {
  FEDSIM_REAL("5Mutex26ReaderLockWhenWithDeadlineERKNS0_9ConditionENS0_4TimeE");
  return Acquire<bool>(this, real, this, &cond, deadline);
}

// Await and CondVar waits drop the held lock while they wait and take it again.
void Mutex::Await(const Condition& cond) {
  FEDSIM_REAL("5Mutex5AwaitERKNS0_9ConditionE");
  ReleaseAcquire<void>(this, real, this, &cond);
}
bool Mutex::AwaitWithTimeout(const Condition& cond, Duration timeout) {
  FEDSIM_REAL("5Mutex16AwaitWithTimeoutERKNS0_9ConditionENS0_8DurationE");
  return ReleaseAcquire<bool>(this, real, this, &cond, timeout);
}
bool Mutex::AwaitWithDeadline(const Condition& cond, Time deadline) {
  FEDSIM_REAL("5Mutex17AwaitWithDeadlineERKNS0_9ConditionENS0_4TimeE");
  return ReleaseAcquire<bool>(this, real, this, &cond, deadline);
}
void CondVar::Wait(Mutex* mu) {
  FEDSIM_REAL("7CondVar4WaitEPNS0_5MutexE");
  ReleaseAcquire<void>(mu, real, this, mu);
}
bool CondVar::WaitWithTimeout(Mutex* mu, Duration timeout) {
  FEDSIM_REAL("7CondVar15WaitWithTimeoutEPNS0_5MutexENS0_8DurationE");
  return ReleaseAcquire<bool>(mu, real, this, mu, timeout);
}
bool CondVar::WaitWithDeadline(Mutex* mu, Time deadline) {
  FEDSIM_REAL("7CondVar16WaitWithDeadlineEPNS0_5MutexENS0_4TimeE");
  return ReleaseAcquire<bool>(mu, real, this, mu, deadline);
}

void Notification::Notify() {
  FEDSIM_REAL("12Notification6NotifyEv");
  __tsan_release(&reinterpret_cast<NotificationLayout*>(this)->notified_yet);
  Release<void>(this, real, this);
}
// A wait that timed out saw no Notify: nothing to acquire, but acquiring
// what was never released is harmless.
void Notification::WaitForNotification() const {
  FEDSIM_REAL("K12Notification19WaitForNotificationEv");
  Acquire<void>(const_cast<Notification*>(this), real, this);
}
bool Notification::WaitForNotificationWithTimeout(Duration timeout) const {
  FEDSIM_REAL("K12Notification30WaitForNotificationWithTimeoutENS0_8DurationE");
  return Acquire<bool>(const_cast<Notification*>(this), real, this, timeout);
}
bool Notification::WaitForNotificationWithDeadline(Time deadline) const {
  FEDSIM_REAL("K12Notification31WaitForNotificationWithDeadlineENS0_4TimeE");
  return Acquire<bool>(const_cast<Notification*>(this), real, this, deadline);
}

// The last decrement (it returns true) sees all the others, like Wait.
bool BlockingCounter::DecrementCount() {
  FEDSIM_REAL("15BlockingCounter14DecrementCountEv");
  return ReleaseAcquire<bool>(this, real, this);
}
void BlockingCounter::Wait() {
  FEDSIM_REAL("15BlockingCounter4WaitEv");
  Acquire<void>(this, real, this);
}

bool Condition::Eval() const {
  FEDSIM_REAL("K9Condition4EvalEv");
  void* const sync = eval_sync;
  if (sync != nullptr) __tsan_acquire(sync);
  const bool r = reinterpret_cast<bool (*)(const Condition*)>(real)(this);
  if (sync != nullptr) __tsan_release(sync);
  return r;
}

#undef FEDSIM_REAL

ABSL_NAMESPACE_END
}  // namespace absl
