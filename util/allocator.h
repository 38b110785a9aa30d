// How the process's allocator treats freed memory.
//
// A task allocates and frees a few model-sized buffers (0.1 to 10 MB) on the
// slot that trains it. With glibc's defaults, freed blocks at the top of a
// thread's heap go back to the kernel (madvise) and large blocks come from
// fresh mmaps, so the next task faults every page in again and the kernel
// zeroes it: on the pfl recipe (60-example tasks, a 0.8 MB MLP) that was 200
// page faults per task and made an in-process run with one slot 3x slower
// than with two (issue 14's "one-slot anomaly").
#ifndef FEDSIM_UTIL_ALLOCATOR_H_
#define FEDSIM_UTIL_ALLOCATOR_H_

namespace fedsim {

// Keeps freed memory in the process for reuse: blocks under 32 MiB come from
// the heap, and a heap is trimmed only when 64 MiB or more is free at its
// top. Peak memory is unchanged (what is kept was in use before); a process
// that shrinks from a large peak holds up to 64 MiB more per heap. Call once,
// first thing in main, before any thread starts. Returns false where the C
// library refused (not glibc, or glibc without these settings).
bool KeepFreedMemoryForReuse();

}  // namespace fedsim

#endif  // FEDSIM_UTIL_ALLOCATOR_H_
