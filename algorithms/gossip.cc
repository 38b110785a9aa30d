#include "algorithms/gossip.h"

#include <algorithm>
#include <tuple>
#include <vector>

#include "absl/strings/str_cat.h"
#include "core/mix_math.h"
#include "util/status_macros.h"
#include "util/thread_pool.h"

namespace fedsim {
namespace {

absl::Status CheckShapes(const MixingMatrix& w, std::span<const std::span<const float>> y,
                         std::span<const std::span<float>> z) {
  const size_t n = w.num_clients();
  if (y.size() != n || z.size() != n) {
    return absl::InvalidArgumentError(absl::StrCat("gossip over ", n, " clients got ", y.size(),
                                                   " input and ", z.size(), " output models"));
  }
  if (n == 0) return absl::OkStatus();
  const size_t p = y[0].size();
  for (size_t i = 0; i < n; ++i) {
    if (y[i].size() != p || z[i].size() != p) {
      return absl::InvalidArgumentError(absl::StrCat("gossip: client ", i, " has ", y[i].size(),
                                                     " input and ", z[i].size(),
                                                     " output parameters, client 0 has ", p));
    }
  }
  if (p == 0) return absl::OkStatus();
  // All vectors have the same length, so when an output overlaps any vector
  // it overlaps its neighbour in address order.
  struct Range {
    const float* begin;
    bool output;
    size_t client;
  };
  std::vector<Range> ranges;
  ranges.reserve(2 * n);
  for (size_t i = 0; i < n; ++i) {
    ranges.push_back({y[i].data(), false, i});
    ranges.push_back({z[i].data(), true, i});
  }
  std::sort(ranges.begin(), ranges.end(), [](const Range& a, const Range& b) {
    return std::tie(a.begin, a.output) < std::tie(b.begin, b.output);
  });
  for (size_t k = 0; k + 1 < ranges.size(); ++k) {
    const Range& a = ranges[k];
    const Range& b = ranges[k + 1];
    if ((a.output || b.output) && b.begin < a.begin + p) {
      return absl::InvalidArgumentError(
          absl::StrCat("gossip: ", a.output ? "output" : "input", " ", a.client, " and ",
                       b.output ? "output" : "input", " ", b.client,
                       " share memory; outputs must be separate buffers"));
    }
  }
  return absl::OkStatus();
}

// The rows' sources and float weights, flattened.
struct Plan {
  std::vector<uint64_t> offsets;  // row i: entries offsets[i]..offsets[i+1]-1
  std::vector<const float*> sources;
  std::vector<float> weights;
};

Plan MakePlan(const MixingMatrix& w, std::span<const std::span<const float>> y) {
  Plan plan;
  plan.offsets.reserve(w.num_clients() + 1);
  plan.offsets.push_back(0);
  for (uint32_t i = 0; i < w.num_clients(); ++i) {
    for (const MatrixEntry& e : w.row(i)) {
      plan.sources.push_back(y[e.col].data());
      plan.weights.push_back(static_cast<float>(e.weight));
    }
    plan.offsets.push_back(plan.sources.size());
  }
  return plan;
}

void RunRows(const Plan& plan, std::span<const std::span<float>> z, size_t p, uint32_t first,
             uint32_t last, size_t block) {
  for (size_t begin = 0; begin < p; begin += block) {
    const size_t end = std::min(p, begin + block);
    for (uint32_t i = first; i < last; ++i) {
      const uint64_t o = plan.offsets[i];
      MixInto(plan.sources.data() + o, plan.weights.data() + o, plan.offsets[i + 1] - o, begin, end,
              z[i].data());
    }
  }
}

}  // namespace

absl::Status GossipRows(const MixingMatrix& w, std::span<const std::span<const float>> y,
                        std::span<const std::span<float>> z, uint32_t first, uint32_t last,
                        size_t block) {
  FEDSIM_RETURN_IF_ERROR(CheckShapes(w, y, z));
  if (first > last || last > w.num_clients()) {
    return absl::InvalidArgumentError(
        absl::StrCat("gossip: rows ", first, "..", last, " outside 0..", w.num_clients()));
  }
  if (first == last || y[0].empty()) return absl::OkStatus();
  RunRows(MakePlan(w, y), z, y[0].size(), first, last, std::max<size_t>(1, block));
  return absl::OkStatus();
}

absl::Status GossipStep(const MixingMatrix& w, std::span<const std::span<const float>> y,
                        std::span<const std::span<float>> z, const GossipOptions& options) {
  FEDSIM_RETURN_IF_ERROR(CheckShapes(w, y, z));
  const uint32_t n = w.num_clients();
  if (n == 0 || y[0].empty()) return absl::OkStatus();
  const Plan plan = MakePlan(w, y);
  const size_t p = y[0].size();
  const size_t block = std::max<size_t>(1, options.block);
  const uint32_t parts =
      options.pool == nullptr
          ? 1
          : std::clamp<uint32_t>(static_cast<uint32_t>(options.pool->num_threads() + 1), 1, n);
  // Contiguous client ranges of equal size; part t gets t * n / parts on.
  ParallelFor(options.pool, parts, [&](size_t t) {
    const auto first = static_cast<uint32_t>(uint64_t{t} * n / parts);
    const auto last = static_cast<uint32_t>(uint64_t{t + 1} * n / parts);
    RunRows(plan, z, p, first, last, block);
  });
  return absl::OkStatus();
}

}  // namespace fedsim
