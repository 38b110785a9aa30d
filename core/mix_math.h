// The arithmetic of mixing client models (ALGORITHMS.md section 6), written
// once for everyone who holds client models: the in-process gossip
// (algorithms/gossip.h, LocalClientModels) and the workers of peer-to-peer
// runs (client/peer_node.h). Each function fixes the operations per element
// and their order, so any split of the clients between processes or threads
// gives the same bits.
//
// Thread safety: pure functions (they write only their outputs).
#ifndef FEDSIM_CORE_MIX_MATH_H_
#define FEDSIM_CORE_MIX_MATH_H_

#include <cstddef>
#include <span>

namespace fedsim {

// dst[j] = sum_e weights[e] * sources[e][j] for j in [begin, end): each
// product exact in double (float x float), summed in double in entry order
// from 0, rounded to float once. Vectorized where the CPU allows; every
// variant gives the same bits (see mix_math.cc).
void MixInto(const float* const* sources, const float* weights, size_t count, size_t begin,
             size_t end, float* dst);

// One mixing row: z = sum_e weights[e] * sources[e], every source of
// z.size() floats (MixInto over the whole vector). REQUIRES:
// sources.size() == weights.size(); no source overlaps z.
void MixRow(std::span<const float* const> sources, std::span<const float> weights,
            std::span<float> z);

// The average model's and the consensus distance's sums, one client at a
// time in client order (a sum split into consecutive blocks of clients,
// each continuing the previous one's, gives the same bits as one):
//   sum[j] += x[j] in double;
//   returns dist + sum_j (x[j] - mean[j])^2, added one j at a time in double.
void AddToModelSum(std::span<const float> x, std::span<double> sum);
double AddSquaredDistance(std::span<const float> x, std::span<const double> mean, double dist);

}  // namespace fedsim

#endif  // FEDSIM_CORE_MIX_MATH_H_
