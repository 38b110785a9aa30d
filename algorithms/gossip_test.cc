#include "algorithms/gossip.h"

#include <cmath>
#include <cstring>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "google/protobuf/text_format.h"
#include "gtest/gtest.h"
#include "util/rng.h"

namespace fedsim {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

// N models of p parameters, with the spans gossip takes.
struct Models {
  Models(size_t n, size_t p) : Models(std::vector<std::vector<float>>(n, std::vector<float>(p))) {}
  explicit Models(std::vector<std::vector<float>> values) : data(std::move(values)) {
    for (auto& v : data) {
      in.emplace_back(v);
      out.emplace_back(v);
    }
  }
  std::vector<std::vector<float>> data;
  std::vector<std::span<const float>> in;
  std::vector<std::span<float>> out;
};

Models Random(size_t n, size_t p, uint64_t seed) {
  Models m(n, p);
  for (size_t i = 0; i < n; ++i) {
    Rng rng(seed, "gossip_test", i);
    for (float& x : m.data[i]) x = static_cast<float>(rng.Normal());
  }
  return m;
}

MixingMatrix RegularMixing(uint32_t n, uint32_t degree) {
  config::Topology config;
  config.mutable_random_regular()->set_degree(degree);
  auto t = NewTopology(config, {.num_clients = n, .seed = 3});
  EXPECT_TRUE(t.ok()) << t.status();
  auto w = BuildMixing(**t, *(*t)->GraphAt(0), config::METROPOLIS_HASTINGS);
  EXPECT_TRUE(w.ok());
  return *std::move(w);
}

TEST(GossipTest, HandComputedThreeClients) {
  // Exactly representable weights, so the result is exact.
  auto w = MixingMatrix::FromRows(
      {{{0, 0.5}, {1, 0.5}}, {{0, 0.25}, {1, 0.5}, {2, 0.25}}, {{1, 0.5}, {2, 0.5}}});
  ASSERT_TRUE(w.ok());
  Models y({{4, 0, 1}, {0, 4, 1}, {8, -4, 1}}), z(3, 3);
  ASSERT_TRUE(GossipStep(*w, y.in, z.out).ok());
  EXPECT_THAT(z.data[0], ElementsAre(2, 2, 1));  // (y0 + y1) / 2
  EXPECT_THAT(z.data[1], ElementsAre(3, 1, 1));  // y0/4 + y1/2 + y2/4
  EXPECT_THAT(z.data[2], ElementsAre(4, 0, 1));  // (y1 + y2) / 2
}

TEST(GossipTest, HandComputedMetropolisHastingsPath) {
  // The path 0 - 1 - 2: degrees 1, 2, 1, so every link weighs 1/3,
  // W_00 = W_22 = 2/3 and W_11 = 1/3.
  MixingMatrix w = MetropolisHastings(
      Graph::FromEdges(3, std::vector<std::pair<uint32_t, uint32_t>>{{0, 1}, {1, 2}}));
  Models y({{3, 0}, {0, 3}, {6, -3}}), z(3, 2);
  ASSERT_TRUE(GossipStep(w, y.in, z.out).ok());
  EXPECT_FLOAT_EQ(z.data[0][0], 2);
  EXPECT_FLOAT_EQ(z.data[0][1], 1);
  EXPECT_FLOAT_EQ(z.data[1][0], 3);
  EXPECT_FLOAT_EQ(z.data[1][1], 0);
  EXPECT_FLOAT_EQ(z.data[2][0], 4);
  EXPECT_FLOAT_EQ(z.data[2][1], -1);
}

TEST(GossipTest, MatchesTheDocumentedArithmeticBitForBit) {
  // 1013 parameters: whole 32-element tiles and a remainder.
  const uint32_t n = 37;
  const size_t p = 1013;
  MixingMatrix w = RegularMixing(n, 6);
  Models y = Random(n, p, 1), z(n, p);
  ASSERT_TRUE(GossipStep(w, y.in, z.out).ok());
  for (uint32_t i = 0; i < n; ++i) {
    for (size_t j = 0; j < p; ++j) {
      double acc = 0;
      for (const MatrixEntry& e : w.row(i)) {
        acc += static_cast<double>(static_cast<float>(e.weight)) * y.data[e.col][j];
      }
      ASSERT_EQ(z.data[i][j], static_cast<float>(acc)) << i << " " << j;
    }
  }
}

TEST(GossipTest, BitIdenticalForAnyThreadCountAndBlock) {
  const uint32_t n = 41;
  const size_t p = 5000;
  MixingMatrix w = RegularMixing(n, 10);
  Models y = Random(n, p, 2);
  Models one(n, p);
  ASSERT_TRUE(GossipStep(w, y.in, one.out).ok());
  ThreadPool three(3), two(2), many(63);
  for (GossipOptions options : {GossipOptions{.pool = &three}, GossipOptions{.pool = &two},
                                GossipOptions{.pool = &many, .block = 7},
                                GossipOptions{.pool = nullptr, .block = 100000}}) {
    Models other(n, p);
    ASSERT_TRUE(GossipStep(w, y.in, other.out, options).ok());
    const int threads = options.pool == nullptr ? 1 : options.pool->num_threads() + 1;
    for (uint32_t i = 0; i < n; ++i) {
      ASSERT_EQ(std::memcmp(one.data[i].data(), other.data[i].data(), p * sizeof(float)), 0)
          << "client " << i << " threads " << threads << " block " << options.block;
    }
  }
  // Rows computed in two calls, as a caller's pool would, agree too.
  Models split(n, p);
  ASSERT_TRUE(GossipRows(w, y.in, split.out, 0, 17).ok());
  ASSERT_TRUE(GossipRows(w, y.in, split.out, 17, n, 512).ok());
  EXPECT_EQ(split.data, one.data);
}

TEST(GossipTest, PreservesTheMeanAndContractsByTheSpectralGap) {
  const uint32_t n = 30;
  const size_t p = 200;
  MixingMatrix w = RegularMixing(n, 4);
  const double gap = *ComputeSpectralGap(w).value;
  Models y = Random(n, p, 3), z(n, p);
  ASSERT_TRUE(GossipStep(w, y.in, z.out).ok());
  auto distance = [&](const Models& m) {
    double d = 0;
    for (size_t j = 0; j < p; ++j) {
      double mean = 0;
      for (uint32_t i = 0; i < n; ++i) mean += m.data[i][j];
      mean /= n;
      for (uint32_t i = 0; i < n; ++i) d += (m.data[i][j] - mean) * (m.data[i][j] - mean);
    }
    return std::sqrt(d);
  };
  for (size_t j = 0; j < p; ++j) {
    double before = 0, after = 0;
    for (uint32_t i = 0; i < n; ++i) {
      before += y.data[i][j];
      after += z.data[i][j];
    }
    ASSERT_NEAR(before / n, after / n, 1e-6);
  }
  // ||W x - xbar|| <= (1 - gap) ||x - xbar|| for a symmetric doubly stochastic W.
  EXPECT_LE(distance(z), (1 - gap) * distance(y) * (1 + 1e-6));
  EXPECT_GT(gap, 0.05);
}

TEST(GossipTest, RejectsBadShapesAndAliasing) {
  MixingMatrix w = RegularMixing(6, 2);
  Models y(6, 10), z(6, 10);
  EXPECT_THAT(GossipStep(w, std::span(y.in).first(5), z.out).message(),
              HasSubstr("gossip over 6 clients got 5 input and 6 output models"));
  Models short_one(6, 10);
  short_one.data[4].resize(9);
  short_one.out[4] = short_one.data[4];
  EXPECT_THAT(GossipStep(w, y.in, short_one.out).message(),
              HasSubstr("client 4 has 10 input and 9 output parameters"));
  // In place: z_2 is y_2.
  Models in_place(6, 10);
  in_place.out[2] = y.data[2];
  EXPECT_THAT(GossipStep(w, y.in, in_place.out).message(), HasSubstr("share memory"));
  // Overlapping by a few elements is caught too.
  std::vector<float> buffer(25);
  Models overlap(6, 10);
  overlap.out[0] = std::span(buffer).subspan(0, 10);
  overlap.out[1] = std::span(buffer).subspan(5, 10);
  EXPECT_THAT(GossipStep(w, y.in, overlap.out).message(), HasSubstr("share memory"));
  EXPECT_FALSE(GossipRows(w, y.in, z.out, 4, 7).ok());
  EXPECT_TRUE(GossipStep(w, y.in, z.out).ok());
}

}  // namespace
}  // namespace fedsim
