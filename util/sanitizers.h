// Whether this build runs under a sanitizer (ASan, TSan or MSan), for the few
// tests whose premise a sanitizer changes: it replaces the allocator,
// reserves terabytes of shadow address space and slows code 5-20x.
// GCC says so with __SANITIZE_*__, clang with __has_feature.
#ifndef FEDSIM_UTIL_SANITIZERS_H_
#define FEDSIM_UTIL_SANITIZERS_H_

// FEDSIM_TSAN: a ThreadSanitizer build (util/tsan.h's annotations).
#if defined(__SANITIZE_THREAD__)
#define FEDSIM_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define FEDSIM_TSAN 1
#endif
#endif

// FEDSIM_SANITIZER_BUILD: any of ASan, TSan, MSan.
#if defined(FEDSIM_TSAN) || defined(__SANITIZE_ADDRESS__)
#define FEDSIM_SANITIZER_BUILD 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer) || __has_feature(memory_sanitizer)
#define FEDSIM_SANITIZER_BUILD 1
#endif
#endif

namespace fedsim {

#ifdef FEDSIM_SANITIZER_BUILD
inline constexpr bool kSanitizerBuild = true;
#else
inline constexpr bool kSanitizerBuild = false;
#endif

}  // namespace fedsim

#endif  // FEDSIM_UTIL_SANITIZERS_H_
