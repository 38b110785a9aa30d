#include "sim/distribution.h"

#include "util/rng.h"

namespace fedsim {

double DrawFromDistribution(const config::Distribution& dist, uint64_t seed,
                            std::string_view purpose, uint32_t client, uint32_t num_clients,
                            double fallback) {
  switch (dist.kind_case()) {
    case config::Distribution::kConstant:
      return dist.constant();
    case config::Distribution::kUniform:
      return Rng(seed, purpose, client).Uniform(dist.uniform().lo(), dist.uniform().hi());
    case config::Distribution::kLognormal:
      return Rng(seed, purpose, client).LogNormal(dist.lognormal().mu(), dist.lognormal().sigma());
    case config::Distribution::kLinear: {
      const config::Distribution::Linear& l = dist.linear();
      if (num_clients <= 1) return l.base();
      // Evaluated as (client * x) / (N - 1), the order both former copies used.
      return l.base() * (1.0 - static_cast<double>(client) * (l.x_percent() / 100.0) /
                                   static_cast<double>(num_clients - 1));
    }
    case config::Distribution::kTable:
      return client < static_cast<uint32_t>(dist.table().values_size())
                 ? dist.table().values(static_cast<int>(client))
                 : fallback;
    case config::Distribution::KIND_NOT_SET:
      break;
  }
  return fallback;
}

std::vector<double> DrawForClients(const config::Distribution& dist, uint64_t seed,
                                   std::string_view purpose, uint32_t num_clients,
                                   double fallback) {
  std::vector<double> out(num_clients);
  for (uint32_t i = 0; i < num_clients; ++i) {
    out[i] = DrawFromDistribution(dist, seed, purpose, i, num_clients, fallback);
  }
  return out;
}

}  // namespace fedsim
