#include "data/partition.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <set>
#include <vector>

#include "absl/status/status.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "util/rng.h"

namespace fedsim {
namespace {

using ::testing::HasSubstr;

// Balanced labels 0..num_classes-1, in a scrambled order.
std::vector<int32_t> MakeLabels(size_t n, int num_classes, uint64_t seed = 99) {
  std::vector<int32_t> y(n);
  for (size_t i = 0; i < n; ++i) y[i] = static_cast<int32_t>(i % num_classes);
  Rng rng(seed, "test/labels");
  rng.Shuffle(y);
  return y;
}

// Every row in [0, n) appears exactly once, and each list is ascending.
void ExpectExactCover(const Partition& p, size_t n) {
  std::vector<int> seen(n, 0);
  for (const auto& rows : p) {
    EXPECT_TRUE(std::is_sorted(rows.begin(), rows.end()));
    for (uint32_t r : rows) {
      ASSERT_LT(r, n);
      ++seen[r];
    }
  }
  for (size_t i = 0; i < n; ++i) ASSERT_EQ(seen[i], 1) << "row " << i;
}

double MeanLabelEntropy(const Partition& p, std::span<const int32_t> y, int num_classes) {
  double total = 0;
  for (const auto& rows : p) {
    std::vector<double> c(num_classes, 0);
    for (uint32_t r : rows) c[y[r]] += 1;
    double h = 0;
    for (double v : c) {
      if (v > 0) h -= v / rows.size() * std::log(v / rows.size());
    }
    total += h;
  }
  return total / p.size();
}

TEST(PartitionIidTest, ExactCoverNearEqualSizes) {
  absl::StatusOr<Partition> p = PartitionIid(1003, 10, 1);
  ASSERT_TRUE(p.ok());
  ASSERT_EQ(p->size(), 10u);
  ExpectExactCover(*p, 1003);
  for (const auto& rows : *p) {
    EXPECT_GE(rows.size(), 100u);
    EXPECT_LE(rows.size(), 101u);
  }
}

TEST(PartitionIidTest, DeterministicPerSeed) {
  EXPECT_EQ(*PartitionIid(500, 7, 3), *PartitionIid(500, 7, 3));
  EXPECT_NE(*PartitionIid(500, 7, 3), *PartitionIid(500, 7, 4));
}

TEST(PartitionIidTest, Errors) {
  EXPECT_EQ(PartitionIid(10, 0, 1).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(PartitionIid(10, -2, 1).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(PartitionIid(10, 11, 1).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(PartitionIid(10, 10, 1).ok());
}

TEST(PartitionDirichletTest, ExactCoverAndMinSize) {
  std::vector<int32_t> y = MakeLabels(5000, 10);
  for (double alpha : {0.05, 0.5, 100.0}) {
    absl::StatusOr<Partition> p = PartitionDirichlet(y, 10, 20, alpha, 10, 2);
    ASSERT_TRUE(p.ok()) << alpha << ": " << p.status();
    ASSERT_EQ(p->size(), 20u);
    ExpectExactCover(*p, y.size());
    for (const auto& rows : *p) EXPECT_GE(rows.size(), 10u);
  }
}

TEST(PartitionDirichletTest, DeterministicPerSeed) {
  std::vector<int32_t> y = MakeLabels(2000, 10);
  EXPECT_EQ(*PartitionDirichlet(y, 10, 8, 0.5, 10, 5), *PartitionDirichlet(y, 10, 8, 0.5, 10, 5));
  EXPECT_NE(*PartitionDirichlet(y, 10, 8, 0.5, 10, 5), *PartitionDirichlet(y, 10, 8, 0.5, 10, 6));
}

TEST(PartitionDirichletTest, SkewGrowsAsAlphaShrinks) {
  std::vector<int32_t> y = MakeLabels(10000, 10);
  double h[3];
  const double alphas[3] = {0.1, 1.0, 10.0};
  for (int i = 0; i < 3; ++i) {
    absl::StatusOr<Partition> p = PartitionDirichlet(y, 10, 20, alphas[i], 10, 8);
    ASSERT_TRUE(p.ok()) << p.status();
    h[i] = MeanLabelEntropy(*p, y, 10);
  }
  EXPECT_LT(h[0], h[1]);
  EXPECT_LT(h[1], h[2]);
  EXPECT_GT(h[2], 0.9 * std::log(10.0));  // near uniform at alpha 10
  EXPECT_LT(h[0], 0.6 * std::log(10.0));  // few labels per client at alpha 0.1
}

TEST(PartitionDirichletTest, TinyAlphaStillAssignsEveryRow) {
  // Gamma draws underflow to 0 at alpha 1e-4; rows must still all be placed.
  std::vector<int32_t> y = MakeLabels(1000, 10);
  absl::StatusOr<Partition> p = PartitionDirichlet(y, 10, 10, 1e-4, 0, 3);
  ASSERT_TRUE(p.ok()) << p.status();
  ExpectExactCover(*p, y.size());
}

TEST(PartitionDirichletTest, Errors) {
  std::vector<int32_t> y = MakeLabels(100, 10);
  auto code = [&](int n, double alpha, size_t min_size, int classes = 10) {
    return PartitionDirichlet(y, classes, n, alpha, min_size, 1).status().code();
  };
  EXPECT_EQ(code(0, 1.0, 0), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(code(5, 0.0, 0), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(code(5, -1.0, 0), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(code(5, NAN, 0), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(code(5, 1.0, 0, 0), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(code(5, 1.0, 0, 5), absl::StatusCode::kInvalidArgument);  // label 9 >= 5
  // min_size * N > rows.
  absl::Status s = PartitionDirichlet(y, 10, 11, 1.0, 10, 1).status();
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(s.message(), HasSubstr("min_size"));
  // Feasible in count, but a skewed draw never gives all 10 clients 10 rows.
  s = PartitionDirichlet(y, 10, 10, 0.01, 10, 1).status();
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(s.message(), HasSubstr("lower min_size or raise alpha"));
}

// Class 0 = rows 0..3, class 1 = rows 4..9; mixes {1,0}, {1,1}, {0,2}.
// Class 0 (total 2, 4 rows): ends round(4 * 1/2) = 2, round(4 * 2/2) = 4, 4.
// Class 1 (total 3, 6 rows): ends 0, round(6 * 1/3) = 2, 6.
TEST(SplitByLabelMixTest, CutsEachClassAtTheRoundedCumulativeShares) {
  const std::vector<int32_t> y = {0, 0, 0, 0, 1, 1, 1, 1, 1, 1};
  const std::vector<double> mix = {1, 0, 1, 1, 0, 2};
  absl::StatusOr<Partition> p = SplitByLabelMix(y, 2, mix);
  ASSERT_TRUE(p.ok()) << p.status();
  EXPECT_EQ(*p, (Partition{{0, 1}, {2, 3, 4, 5}, {6, 7, 8, 9}}));
}

TEST(SplitByLabelMixTest, RoundsHalfToEvenAsNumpy) {
  // 5 rows, two equal shares: round(2.5) = 2 (numpy), not 3.
  const std::vector<int32_t> y = {0, 0, 0, 0, 0};
  absl::StatusOr<Partition> p = SplitByLabelMix(y, 1, std::vector<double>{1, 1});
  ASSERT_TRUE(p.ok()) << p.status();
  EXPECT_EQ(*p, (Partition{{0, 1}, {2, 3, 4}}));
  // 7 rows: round(3.5) = 4.
  const std::vector<int32_t> y7(7, 0);
  p = SplitByLabelMix(y7, 1, std::vector<double>{1, 1});
  ASSERT_TRUE(p.ok()) << p.status();
  EXPECT_EQ((*p)[0].size(), 4u);
}

TEST(SplitByLabelMixTest, Errors) {
  const std::vector<int32_t> y = {0, 1};
  EXPECT_FALSE(SplitByLabelMix(y, 2, std::vector<double>{1, 0, 1}).ok());   // not N x C
  EXPECT_FALSE(SplitByLabelMix(y, 2, std::vector<double>{1, -1}).ok());     // negative
  absl::Status s = SplitByLabelMix(y, 2, std::vector<double>{1, 0, 1, 0}).status();
  EXPECT_THAT(s.message(), HasSubstr("no client has weight for class 1"));
  EXPECT_FALSE(SplitByLabelMix(y, 1, std::vector<double>{1}).ok());         // label 1 >= 1
}

TEST(PartitionLabelMixTest, ExactCoverDeterministicAndNoEmptyClient) {
  std::vector<int32_t> y = MakeLabels(20000, 10);
  absl::StatusOr<Partition> a = PartitionLabelMix(y, 10, 100, 0.1, 7);
  ASSERT_TRUE(a.ok()) << a.status();
  ExpectExactCover(*a, y.size());
  for (const auto& rows : *a) EXPECT_FALSE(rows.empty());
  absl::StatusOr<Partition> b = PartitionLabelMix(y, 10, 100, 0.1, 7);
  ASSERT_TRUE(b.ok());
  EXPECT_EQ(*a, *b);
  absl::StatusOr<Partition> c = PartitionLabelMix(y, 10, 100, 0.1, 8);
  ASSERT_TRUE(c.ok());
  EXPECT_NE(*a, *c);
}

double SizeCv(const Partition& p) {
  double mean = 0, sq = 0;
  for (const auto& rows : p) mean += rows.size();
  mean /= p.size();
  for (const auto& rows : p) sq += (rows.size() - mean) * (rows.size() - mean);
  return std::sqrt(sq / p.size()) / mean;
}

// Each client's labels follow its own skewed mix, while sizes stay near
// rows / N (every mix sums to 1); the per-class Dirichlet gives the same label
// skew with far more uneven sizes. This is what changes FedAU's p_i spread.
TEST(PartitionLabelMixTest, SkewedLabelsNearEqualSizes) {
  std::vector<int32_t> y = MakeLabels(20000, 10);
  double h[2];
  const double alphas[2] = {0.1, 10.0};
  for (int i = 0; i < 2; ++i) {
    absl::StatusOr<Partition> p = PartitionLabelMix(y, 10, 100, alphas[i], 5);
    ASSERT_TRUE(p.ok()) << p.status();
    h[i] = MeanLabelEntropy(*p, y, 10);
  }
  EXPECT_LT(h[0], 0.6 * std::log(10.0));
  EXPECT_GT(h[1], 0.9 * std::log(10.0));
  absl::StatusOr<Partition> mix = PartitionLabelMix(y, 10, 100, 0.1, 5);
  absl::StatusOr<Partition> dir = PartitionDirichlet(y, 10, 100, 0.1, 10, 5);
  ASSERT_TRUE(mix.ok() && dir.ok());
  EXPECT_LT(SizeCv(*mix), 0.5);
  EXPECT_GT(SizeCv(*dir), 2 * SizeCv(*mix));
}

TEST(PartitionLabelMixTest, Errors) {
  std::vector<int32_t> y = MakeLabels(100, 10);
  EXPECT_FALSE(PartitionLabelMix(y, 10, 0, 1.0, 1).ok());
  EXPECT_FALSE(PartitionLabelMix(y, 10, 5, 0.0, 1).ok());
  EXPECT_FALSE(PartitionLabelMix(y, 10, 5, NAN, 1).ok());
  EXPECT_FALSE(PartitionLabelMix(y, 5, 5, 1.0, 1).ok());  // label 9 >= 5
  // 200 clients for 100 rows: someone gets nothing.
  absl::Status s = PartitionLabelMix(y, 10, 200, 1.0, 1).status();
  EXPECT_THAT(s.message(), HasSubstr("raise alpha or lower num_clients"));
}

TEST(PartitionShardsTest, TwoLabelsPerClient) {
  std::vector<int32_t> y = MakeLabels(6000, 10);
  absl::StatusOr<Partition> p = PartitionShards(y, 100, 2, 4);
  ASSERT_TRUE(p.ok());
  ASSERT_EQ(p->size(), 100u);
  ExpectExactCover(*p, y.size());
  double labels_total = 0;
  for (const auto& rows : *p) {
    EXPECT_EQ(rows.size(), 60u);
    std::set<int32_t> labels;
    for (uint32_t r : rows) labels.insert(y[r]);
    EXPECT_LE(labels.size(), 2u);
    labels_total += labels.size();
  }
  EXPECT_GT(labels_total / 100, 1.5);  // mostly 2 distinct, sometimes 1
}

TEST(PartitionShardsTest, UnevenRowCountStillCoversEveryRow) {
  std::vector<int32_t> y = MakeLabels(1001, 10);
  absl::StatusOr<Partition> p = PartitionShards(y, 7, 3, 4);
  ASSERT_TRUE(p.ok());
  ExpectExactCover(*p, y.size());
  for (const auto& rows : *p) {
    EXPECT_GE(rows.size(), 3 * (1001 / 21));
    EXPECT_LE(rows.size(), 3 * (1001 / 21 + 1));
  }
}

TEST(PartitionShardsTest, DeterministicPerSeed) {
  std::vector<int32_t> y = MakeLabels(600, 10);
  EXPECT_EQ(*PartitionShards(y, 10, 2, 1), *PartitionShards(y, 10, 2, 1));
  EXPECT_NE(*PartitionShards(y, 10, 2, 1), *PartitionShards(y, 10, 2, 2));
}

TEST(PartitionShardsTest, Errors) {
  std::vector<int32_t> y = MakeLabels(20, 2);
  EXPECT_EQ(PartitionShards(y, 0, 2, 1).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(PartitionShards(y, 2, 0, 1).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(PartitionShards(y, 11, 2, 1).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(PartitionShards(y, 10, 2, 1).ok());
}

}  // namespace
}  // namespace fedsim
