// Hand-off annotations for ThreadSanitizer, for objects that pass between
// threads through a library TSan cannot see into.
//
// Debian builds gRPC without -fsanitize=thread, so the ordering gRPC's core
// gives a callback reactor (a thread calls StartRead; another runs
// OnReadDone after the read completes) is invisible to TSan, and every field
// a reactor touches on both sides looks like a race. A reactor calls
// TsanRelease(this) just before it hands itself to gRPC (Start*, Finish) and
// TsanAcquire(this) first thing in each On* callback: TSan then sees the
// order gRPC guarantees, and nothing more. A field touched by a thread that
// is not part of that chain (a timer, the transport) is still reported.
//
// In any other build both are empty inline functions.
//
// Thread safety: safe from any thread.
#ifndef FEDSIM_UTIL_TSAN_H_
#define FEDSIM_UTIL_TSAN_H_

#include "util/sanitizers.h"  // FEDSIM_TSAN

#ifdef FEDSIM_TSAN
extern "C" void __tsan_acquire(void* addr);
extern "C" void __tsan_release(void* addr);
#endif

namespace fedsim {

// What this thread did so far happens before whatever follows a
// TsanAcquire(p) on another thread.
inline void TsanRelease(const void* p) {
#ifdef FEDSIM_TSAN
  __tsan_release(const_cast<void*>(p));
#else
  (void)p;
#endif
}

// What preceded the last TsanRelease(p) happens before what follows.
inline void TsanAcquire(const void* p) {
#ifdef FEDSIM_TSAN
  __tsan_acquire(const_cast<void*>(p));
#else
  (void)p;
#endif
}

}  // namespace fedsim

#endif  // FEDSIM_UTIL_TSAN_H_
