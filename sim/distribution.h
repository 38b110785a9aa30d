// Per-client values drawn from a scenario Distribution: the one sampler behind
// device profiles (sim/devices.h, purpose "device.<field>") and participation
// probabilities (sim/participation.h, purpose "participation_prob").
//
// Client i's value comes from its own counter-keyed stream
// Rng(seed, purpose, i), so it depends neither on the order in which clients
// are asked for nor, for the random kinds, on the number of clients.
//
// Thread safety: pure functions.
#ifndef FEDSIM_SIM_DISTRIBUTION_H_
#define FEDSIM_SIM_DISTRIBUTION_H_

#include <cstdint>
#include <string_view>
#include <vector>

#include "proto/scenario.pb.h"

namespace fedsim {

// The value of `dist` for `client` of `num_clients`:
//   constant  -> the constant;
//   uniform   -> U(lo, hi), from Rng(seed, purpose, client);
//   lognormal -> exp(N(mu, sigma)), from Rng(seed, purpose, client);
//   linear    -> (Fraboni F-X) base * (1 - client * (x_percent/100) / (N - 1)),
//                base when N == 1;
//   table     -> values[client] (`fallback` when the table is too short);
//   unset     -> `fallback`.
// No checks: an inverted uniform range or a negative sigma give whatever the
// formulas give; the scenario validation refuses them before anything runs.
// REQUIRES: client < num_clients.
double DrawFromDistribution(const config::Distribution& dist, uint64_t seed,
                            std::string_view purpose, uint32_t client, uint32_t num_clients,
                            double fallback);

// DrawFromDistribution for clients 0 .. num_clients-1, in order.
std::vector<double> DrawForClients(const config::Distribution& dist, uint64_t seed,
                                   std::string_view purpose, uint32_t num_clients, double fallback);

}  // namespace fedsim

#endif  // FEDSIM_SIM_DISTRIBUTION_H_
