// Partitioners (ALGORITHMS.md section 10). Every client's row list is returned
// in ascending row order: the lists are sets, and ascending order keeps
// Dataset::Gather walking memory forwards.
#include "data/partition.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>
#include <string>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "util/rng.h"

namespace fedsim {
namespace {

constexpr int kMaxDirichletDraws = 1000;

void SortEach(Partition& p) {
  for (auto& rows : p) std::sort(rows.begin(), rows.end());
}

absl::Status CheckRowCount(size_t num_rows, const char* who) {
  if (num_rows > std::numeric_limits<uint32_t>::max()) {
    return absl::InvalidArgumentError(
        absl::StrCat(who, ": ", num_rows, " rows do not fit 32-bit row indices"));
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<Partition> PartitionIid(size_t num_rows, int num_clients, uint64_t seed) {
  if (absl::Status s = CheckRowCount(num_rows, "PartitionIid"); !s.ok()) return s;
  if (num_clients <= 0 || static_cast<size_t>(num_clients) > num_rows) {
    return absl::InvalidArgumentError(absl::StrCat("PartitionIid: num_clients must be in [1, ",
                                                   num_rows, "] (the row count), got ",
                                                   num_clients));
  }
  std::vector<uint32_t> rows(num_rows);
  std::iota(rows.begin(), rows.end(), 0u);
  Rng rng(seed, "partition/iid");
  rng.Shuffle(rows);
  Partition out(num_clients);
  const size_t n = static_cast<size_t>(num_clients);
  const size_t base = num_rows / n;
  const size_t extra = num_rows % n;
  size_t pos = 0;
  for (size_t k = 0; k < n; ++k) {
    const size_t size = base + (k < extra ? 1 : 0);
    out[k].assign(rows.begin() + pos, rows.begin() + pos + size);
    pos += size;
  }
  SortEach(out);
  return out;
}

absl::StatusOr<Partition> PartitionDirichlet(std::span<const int32_t> labels, int num_classes,
                                             int num_clients, double alpha, size_t min_size,
                                             uint64_t seed) {
  const size_t num_rows = labels.size();
  if (absl::Status s = CheckRowCount(num_rows, "PartitionDirichlet"); !s.ok()) return s;
  if (num_clients <= 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("PartitionDirichlet: num_clients must be positive, got ", num_clients));
  }
  if (num_classes <= 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("PartitionDirichlet: num_classes must be positive, got ", num_classes));
  }
  if (!(alpha > 0.0) || !std::isfinite(alpha)) {
    return absl::InvalidArgumentError(
        absl::StrCat("PartitionDirichlet: alpha must be finite and > 0, got ", alpha));
  }
  const size_t n = static_cast<size_t>(num_clients);
  if (min_size > 0 && min_size > num_rows / n) {
    return absl::InvalidArgumentError(absl::StrCat("PartitionDirichlet: min_size ", min_size, " x ",
                                                   num_clients, " clients exceeds the ", num_rows,
                                                   " rows"));
  }
  std::vector<std::vector<uint32_t>> by_class(num_classes);
  for (size_t i = 0; i < num_rows; ++i) {
    const int32_t y = labels[i];
    if (y < 0 || y >= num_classes) {
      return absl::InvalidArgumentError(absl::StrCat("PartitionDirichlet: label ", y, " at row ", i,
                                                     " is outside [0, ", num_classes, ")"));
    }
    by_class[y].push_back(static_cast<uint32_t>(i));
  }

  Partition out(n);
  std::vector<uint32_t> idx;
  for (int attempt = 0; attempt < kMaxDirichletDraws; ++attempt) {
    Rng rng(seed, "partition/dirichlet", static_cast<uint64_t>(attempt));
    for (auto& rows : out) rows.clear();
    for (int c = 0; c < num_classes; ++c) {
      idx = by_class[c];
      rng.Shuffle(idx);
      std::vector<double> p = rng.DirichletSymmetric(alpha, n);
      // NIID-Bench: clients already holding a fair share (rows / N) get no
      // more. Compared in integers: size < rows / N  <=>  size * N < rows.
      double sum = 0.0;
      for (size_t k = 0; k < n; ++k) {
        if (out[k].size() * n >= num_rows) p[k] = 0.0;
        sum += p[k];
      }
      if (!(sum > 0.0)) {
        // Every eligible share underflowed (tiny alpha), which NIID-Bench's
        // numpy code turns into NaN. Take the alpha -> 0 limit instead: the
        // whole class goes to one eligible client. One exists while rows
        // remain unassigned, since not all N can hold >= rows / N already.
        std::vector<size_t> eligible;
        for (size_t k = 0; k < n; ++k) {
          if (out[k].size() * n < num_rows) eligible.push_back(k);
        }
        if (eligible.empty()) eligible.push_back(0);  // unreachable; keeps rows assigned
        std::fill(p.begin(), p.end(), 0.0);
        p[eligible[rng.UniformInt(eligible.size())]] = 1.0;
        sum = 1.0;
      }
      // Split points floor(cumsum(p) * len), the last forced to len.
      double cum = 0.0;
      size_t begin = 0;
      for (size_t k = 0; k < n; ++k) {
        cum += p[k] / sum;
        size_t end = k + 1 == n ? idx.size() : static_cast<size_t>(std::floor(cum * idx.size()));
        end = std::clamp(end, begin, idx.size());
        out[k].insert(out[k].end(), idx.begin() + begin, idx.begin() + end);
        begin = end;
      }
    }
    size_t smallest = num_rows;
    for (const auto& rows : out) smallest = std::min(smallest, rows.size());
    if (smallest >= min_size) {
      SortEach(out);
      return out;
    }
  }
  return absl::InvalidArgumentError(
      absl::StrCat("PartitionDirichlet: no draw in ", kMaxDirichletDraws, " gave every one of ",
                   num_clients, " clients at least ", min_size, " rows (alpha ", alpha, ", ",
                   num_rows, " rows); lower min_size or raise alpha"));
}

namespace {

// Rows of each class, ascending. InvalidArgument for a label outside range.
absl::StatusOr<std::vector<std::vector<uint32_t>>> RowsByClass(std::span<const int32_t> labels,
                                                                int num_classes, const char* who) {
  std::vector<std::vector<uint32_t>> by_class(num_classes);
  for (size_t i = 0; i < labels.size(); ++i) {
    const int32_t y = labels[i];
    if (y < 0 || y >= num_classes) {
      return absl::InvalidArgumentError(absl::StrCat(who, ": label ", y, " at row ", i,
                                                     " is outside [0, ", num_classes, ")"));
    }
    by_class[y].push_back(static_cast<uint32_t>(i));
  }
  return by_class;
}

// SplitByLabelMix's cut, over the given per-class row orders.
absl::StatusOr<Partition> CutByMix(const std::vector<std::vector<uint32_t>>& by_class,
                                   size_t num_clients, std::span<const double> mix,
                                   const char* who) {
  const size_t num_classes = by_class.size();
  Partition out(num_clients);
  for (size_t c = 0; c < num_classes; ++c) {
    double total = 0.0;
    for (size_t i = 0; i < num_clients; ++i) total += mix[i * num_classes + c];
    const std::vector<uint32_t>& rows = by_class[c];
    if (rows.empty()) continue;
    if (!(total > 0.0) || !std::isfinite(total)) {
      return absl::InvalidArgumentError(absl::StrCat(
          who, ": no client has weight for class ", c, " (its ", rows.size(), " rows)"));
    }
    // end_i = round(n_c * cumsum_{j <= i} mix[j][c] / total), as the FedAU
    // code computes it (numpy rounds half to even, as nearbyint does).
    double cum = 0.0;
    size_t begin = 0;
    for (size_t i = 0; i < num_clients; ++i) {
      cum += mix[i * num_classes + c];
      size_t end =
          i + 1 == num_clients
              ? rows.size()
              : static_cast<size_t>(std::nearbyint(static_cast<double>(rows.size()) * cum / total));
      end = std::clamp(end, begin, rows.size());
      out[i].insert(out[i].end(), rows.begin() + begin, rows.begin() + end);
      begin = end;
    }
  }
  SortEach(out);
  return out;
}

}  // namespace

absl::StatusOr<Partition> SplitByLabelMix(std::span<const int32_t> labels, int num_classes,
                                          std::span<const double> mix) {
  if (absl::Status s = CheckRowCount(labels.size(), "SplitByLabelMix"); !s.ok()) return s;
  if (num_classes <= 0 || mix.empty() || mix.size() % static_cast<size_t>(num_classes) != 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("SplitByLabelMix: mix must hold num_clients x num_classes (", num_classes,
                     ") weights, got ", mix.size()));
  }
  for (double w : mix) {
    if (!(w >= 0.0) || !std::isfinite(w)) {
      return absl::InvalidArgumentError(
          absl::StrCat("SplitByLabelMix: mix weights must be finite and >= 0, got ", w));
    }
  }
  absl::StatusOr<std::vector<std::vector<uint32_t>>> by_class =
      RowsByClass(labels, num_classes, "SplitByLabelMix");
  if (!by_class.ok()) return by_class.status();
  return CutByMix(*by_class, mix.size() / num_classes, mix, "SplitByLabelMix");
}

absl::StatusOr<Partition> PartitionLabelMix(std::span<const int32_t> labels, int num_classes,
                                            int num_clients, double alpha, uint64_t seed) {
  if (absl::Status s = CheckRowCount(labels.size(), "PartitionLabelMix"); !s.ok()) return s;
  if (num_clients <= 0 || num_classes <= 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("PartitionLabelMix: num_clients and num_classes must be positive, got ",
                     num_clients, " and ", num_classes));
  }
  if (!(alpha > 0.0) || !std::isfinite(alpha)) {
    return absl::InvalidArgumentError(
        absl::StrCat("PartitionLabelMix: alpha must be finite and > 0, got ", alpha));
  }
  absl::StatusOr<std::vector<std::vector<uint32_t>>> by_class =
      RowsByClass(labels, num_classes, "PartitionLabelMix");
  if (!by_class.ok()) return by_class.status();
  const size_t n = static_cast<size_t>(num_clients);
  const size_t c = static_cast<size_t>(num_classes);
  Rng rng(seed, "partition/label_mix");
  std::vector<double> mix;
  mix.reserve(n * c);
  for (size_t i = 0; i < n; ++i) {
    const std::vector<double> q = rng.DirichletSymmetric(alpha, c);
    mix.insert(mix.end(), q.begin(), q.end());
  }
  for (auto& rows : *by_class) rng.Shuffle(rows);
  absl::StatusOr<Partition> out = CutByMix(*by_class, n, mix, "PartitionLabelMix");
  if (!out.ok()) return out.status();
  for (size_t i = 0; i < n; ++i) {
    if ((*out)[i].empty()) {
      return absl::InvalidArgumentError(
          absl::StrCat("PartitionLabelMix: client ", i, " of ", num_clients,
                       " got no rows (alpha ", alpha, ", ", labels.size(),
                       " rows); raise alpha or lower num_clients"));
    }
  }
  return out;
}

absl::StatusOr<Partition> PartitionShards(std::span<const int32_t> labels, int num_clients,
                                          int shards_per_client, uint64_t seed) {
  const size_t num_rows = labels.size();
  if (absl::Status s = CheckRowCount(num_rows, "PartitionShards"); !s.ok()) return s;
  if (num_clients <= 0 || shards_per_client <= 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("PartitionShards: num_clients and shards_per_client must be positive, got ",
                     num_clients, " and ", shards_per_client));
  }
  const size_t num_shards = static_cast<size_t>(num_clients) * shards_per_client;
  if (num_shards > num_rows) {
    return absl::InvalidArgumentError(absl::StrCat("PartitionShards: ", num_shards, " shards (",
                                                   num_clients, " clients x ", shards_per_client,
                                                   ") exceed the ", num_rows, " rows"));
  }
  std::vector<uint32_t> sorted(num_rows);
  std::iota(sorted.begin(), sorted.end(), 0u);
  std::stable_sort(sorted.begin(), sorted.end(),
                   [&](uint32_t a, uint32_t b) { return labels[a] < labels[b]; });
  // Shard s covers sorted[s * rows / S, (s + 1) * rows / S): sizes differ by
  // at most one when S does not divide the row count, and no row is dropped.
  std::vector<uint32_t> shard_ids(num_shards);
  std::iota(shard_ids.begin(), shard_ids.end(), 0u);
  Rng rng(seed, "partition/shards");
  rng.Shuffle(shard_ids);
  Partition out(num_clients);
  for (size_t i = 0; i < num_shards; ++i) {
    const size_t s = shard_ids[i];
    const size_t begin = s * num_rows / num_shards;
    const size_t end = (s + 1) * num_rows / num_shards;
    auto& rows = out[i / shards_per_client];
    rows.insert(rows.end(), sorted.begin() + begin, sorted.begin() + end);
  }
  SortEach(out);
  return out;
}

}  // namespace fedsim
