// One gossip step of decentralized training (ALGORITHMS.md section 6):
//   z_i = sum_l W_il y_l   for every client i,
// over the clients' flat float32 models y_l, with W a MixingMatrix
// (algorithms/mixing.h). DFedSAM-MGS runs Q of them, alternating two buffers.
//
// Reproducibility: every output element is computed the same way wherever and
// however it runs. The weights are rounded to float once; each product
// float(W_il) * y_l[j] is then exact in double (24 + 24 bits < 53), so it does
// not matter whether the compiler fuses the multiply and the add; products are
// summed in double in ascending l (the row's column order), from 0, and the
// sum is rounded to float once. No sum is ever split between threads or
// vector lanes, so results are bit-identical for any thread count, block size
// and instruction set. (Rounding W to float moves a weight by at most 6e-8 of
// itself, below the float rounding of the result.)
//
// Speed: the step is bound by memory. The parameters are cut into blocks;
// for each block, every client's output block is computed in turn while its
// neighbours' blocks are read, so a block of all N models (N x block x 4
// bytes) stays in cache and each model is fetched from memory about once per
// step instead of once per neighbour. bench/gossip_bench.cc measures it.
//
// Thread safety: the functions write only to z; callers may run GossipRows on
// disjoint client ranges from several threads at once.
#ifndef FEDSIM_ALGORITHMS_GOSSIP_H_
#define FEDSIM_ALGORITHMS_GOSSIP_H_

#include <cstddef>
#include <cstdint>
#include <span>

#include "absl/status/status.h"
#include "algorithms/mixing.h"
#include "util/thread_pool.h"

namespace fedsim {

// Parameters per block: 100 clients x 2048 x 4 bytes = 800 KiB, within a
// current server core's L2 (1-2 MiB).
inline constexpr size_t kDefaultGossipBlock = 2048;

struct GossipOptions {
  // Threads that share the clients with the calling thread (each computes
  // whole rows: sums are never split). Default: nullptr = the calling thread
  // only.
  ThreadPool* pool = nullptr;
  // Parameters per block (any value > 0 gives the same result). Default:
  // kDefaultGossipBlock.
  size_t block = kDefaultGossipBlock;
};

// z_i = sum_l W_il y_l for every client i. InvalidArgument unless y and z
// have one vector per row of w, all of the same length, and no z_i overlaps
// another vector (z_i == y_i in place would feed half-mixed values to later
// rows: use two buffers).
absl::Status GossipStep(const MixingMatrix& w, std::span<const std::span<const float>> y,
                        std::span<const std::span<float>> z, const GossipOptions& options = {});

// The same for the clients first..last-1 only, on the calling thread, for a
// caller with its own thread pool. The same checks as GossipStep.
// REQUIRES: first <= last <= w.num_clients().
absl::Status GossipRows(const MixingMatrix& w, std::span<const std::span<const float>> y,
                        std::span<const std::span<float>> z, uint32_t first, uint32_t last,
                        size_t block = kDefaultGossipBlock);

}  // namespace fedsim

#endif  // FEDSIM_ALGORITHMS_GOSSIP_H_
