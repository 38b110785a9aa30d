#include "algorithms/mixing.h"

#include <cmath>
#include <fstream>
#include <numbers>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "google/protobuf/text_format.h"
#include "gtest/gtest.h"

namespace fedsim {
namespace {

using ::testing::HasSubstr;

std::unique_ptr<Topology> MustBuild(const std::string& text, uint32_t n, uint64_t seed = 1) {
  config::Topology config;
  EXPECT_TRUE(google::protobuf::TextFormat::ParseFromString(text, &config)) << text;
  auto t = NewTopology(config, {.num_clients = n, .seed = seed});
  EXPECT_TRUE(t.ok()) << text << ": " << t.status();
  return std::move(t).value();
}

std::string WriteFile(const std::string& name, const std::string& text) {
  const std::string path = ::testing::TempDir() + "/" + name;
  std::ofstream(path) << text;
  return path;
}

// Sparse row sums and symmetry, checked here without CheckMixing.
void ExpectSymmetricDoublyStochastic(const MixingMatrix& w, const std::string& what) {
  const uint32_t n = w.num_clients();
  std::vector<double> columns(n, 0.0);
  for (uint32_t i = 0; i < n; ++i) {
    double row = 0;
    for (const MatrixEntry& e : w.row(i)) {
      row += e.weight;
      columns[e.col] += e.weight;
      EXPECT_GE(e.weight, 0) << what;
      EXPECT_NEAR(e.weight, w.at(e.col, i), 1e-15) << what << " W_" << i << "," << e.col;
    }
    EXPECT_NEAR(row, 1, 1e-12) << what << " row " << i;
  }
  for (uint32_t j = 0; j < n; ++j) EXPECT_NEAR(columns[j], 1, 1e-12) << what << " column " << j;
}

TEST(MixingTest, MetropolisHastingsIsSymmetricAndDoublyStochasticForEverySymmetricKind) {
  const std::string edges = WriteFile("mh_edges.csv", "i,j\n0,1\n1,2\n2,3\n3,0\n0,2\n4,0\n");
  const uint32_t n = 24;
  for (const char* kind :
       {"ring {}", "torus {}", "torus { rows: 2 wrap: false }", "exponential {}",
        "random_regular { degree: 5 }", "erdos_renyi { p: 0.3 }", "full {}"}) {
    auto t = MustBuild(kind, n);
    auto w = BuildMixing(*t, *t->GraphAt(0), config::METROPOLIS_HASTINGS);
    ASSERT_TRUE(w.ok()) << kind << ": " << w.status();
    ExpectSymmetricDoublyStochastic(*w, kind);
    const MixingProperties p = CheckMixing(*w);
    EXPECT_TRUE(p.symmetric && p.doubly_stochastic() && p.nonnegative) << kind;
    EXPECT_EQ(p.Describe(), "symmetric, doubly stochastic") << kind;
    // Exactly the graph's links plus the diagonal.
    EXPECT_EQ(w->num_entries(), t->GraphAt(0)->num_links() + n) << kind;
  }
  auto file = MustBuild("edge_list { csv: '" + edges + "' }", 5);
  ExpectSymmetricDoublyStochastic(
      *BuildMixing(*file, *file->GraphAt(0), config::MIXING_UNSPECIFIED), "edge_list");
  // A time-varying graph is made undirected first, so each round's W is too.
  auto tv = MustBuild("time_varying { k: 3 }", n);
  for (uint64_t round = 0; round < 3; ++round) {
    auto g = tv->GraphAt(round);
    ASSERT_FALSE(g->symmetric());
    auto w = BuildMixing(*tv, *g, config::METROPOLIS_HASTINGS);
    ASSERT_TRUE(w.ok()) << w.status();
    ExpectSymmetricDoublyStochastic(*w, "time_varying");
  }
}

TEST(MixingTest, MetropolisHastingsWeightsOnAStar) {
  // Client 0 linked to 1, 2 and 3: d_0 = 3, d_leaf = 1.
  Graph star =
      Graph::FromEdges(4, std::vector<std::pair<uint32_t, uint32_t>>{{0, 1}, {0, 2}, {0, 3}});
  MixingMatrix w = MetropolisHastings(star);
  EXPECT_EQ(w.at(0, 0), 0.25);
  EXPECT_EQ(w.at(0, 2), 0.25);
  EXPECT_EQ(w.at(2, 0), 0.25);
  EXPECT_EQ(w.at(2, 2), 0.75);
  EXPECT_EQ(w.at(2, 3), 0.0);
  ASSERT_EQ(w.row(1).size(), 2u);
  EXPECT_EQ(w.row(1)[0].col, 0u);  // sorted by column, diagonal in place
  EXPECT_EQ(w.row(1)[1].col, 1u);
}

TEST(MixingTest, UniformRowsAreOnlyRowStochasticOnAnIrregularGraph) {
  Graph star =
      Graph::FromEdges(4, std::vector<std::pair<uint32_t, uint32_t>>{{0, 1}, {0, 2}, {0, 3}});
  MixingMatrix w = UniformRows(star);
  EXPECT_EQ(w.at(0, 0), 0.25);
  EXPECT_EQ(w.at(1, 0), 0.5);
  EXPECT_EQ(w.at(1, 1), 0.5);
  const MixingProperties p = CheckMixing(w);
  EXPECT_TRUE(p.row_stochastic);
  EXPECT_FALSE(p.column_stochastic);
  EXPECT_FALSE(p.symmetric);
  EXPECT_EQ(p.Describe(), "row-stochastic only (not doubly stochastic)");
  const SpectralGap gap = ComputeSpectralGap(w);
  EXPECT_FALSE(gap.value.has_value());
  EXPECT_EQ(gap.note, "not doubly stochastic: no spectral gap");
  // On a regular graph the same rule is symmetric and doubly stochastic.
  EXPECT_EQ(CheckMixing(UniformRows(*MustBuild("ring {}", 9)->GraphAt(0))).Describe(),
            "symmetric, doubly stochastic");
}

TEST(MixingTest, RingSpectralGapMatchesTheClosedForm) {
  for (uint32_t n : {5u, 6u, 10u, 31u, 100u}) {
    auto t = MustBuild("ring {}", n);
    auto w = BuildMixing(*t, *t->GraphAt(0), config::METROPOLIS_HASTINGS);
    ASSERT_TRUE(w.ok());
    const SpectralGap gap = ComputeSpectralGap(*w);
    ASSERT_TRUE(gap.value.has_value()) << gap.note;
    const double expected = 1 - (1.0 / 3 + 2.0 / 3 * std::cos(2 * std::numbers::pi / n));
    EXPECT_NEAR(*gap.value, expected, 1e-12) << n;
    EXPECT_EQ(gap.note, "1 - |lambda_2|");
  }
}

TEST(MixingTest, FullyConnectedIsOneOverNWithGapOne) {
  auto t = MustBuild("full {}", 12);
  for (auto mixing : {config::METROPOLIS_HASTINGS, config::UNIFORM_ROWS}) {
    auto w = BuildMixing(*t, *t->GraphAt(0), mixing);
    ASSERT_TRUE(w.ok());
    for (uint32_t i = 0; i < 12; ++i) {
      for (uint32_t j = 0; j < 12; ++j) EXPECT_NEAR(w->at(i, j), 1.0 / 12, 1e-16);
    }
    EXPECT_NEAR(*ComputeSpectralGap(*w).value, 1.0, 1e-12);
  }
}

TEST(MixingTest, DisconnectedGraphHasGapZero) {
  Graph two = Graph::FromEdges(4, std::vector<std::pair<uint32_t, uint32_t>>{{0, 1}, {2, 3}});
  EXPECT_NEAR(*ComputeSpectralGap(MetropolisHastings(two)).value, 0.0, 1e-12);
}

TEST(MixingTest, LargerGapForBetterConnectedGraphs) {
  auto gap = [](const std::string& kind) {
    auto t = MustBuild(kind, 64);
    return *ComputeSpectralGap(*BuildMixing(*t, *t->GraphAt(0), config::METROPOLIS_HASTINGS)).value;
  };
  const double ring = gap("ring {}"), torus = gap("torus {}"), expo = gap("exponential {}"),
               regular = gap("random_regular { degree: 10 }");
  EXPECT_LT(ring, torus);
  EXPECT_LT(torus, expo);
  EXPECT_LT(torus, regular);
  EXPECT_LT(regular, 1.0);
}

TEST(MixingTest, NonSymmetricDoublyStochasticCustomMatrixUsesSigma2) {
  // W = (I + P) / 2 with P the cyclic shift: doubly stochastic, not
  // symmetric; its singular values are |cos(pi k / N)|, so sigma_2 = cos(pi/N).
  const uint32_t n = 8;
  std::string csv = "i,j,weight\n";
  for (uint32_t i = 0; i < n; ++i) {
    csv += std::to_string(i) + "," + std::to_string(i) + ",0.5\n";
    csv += std::to_string(i) + "," + std::to_string((i + 1) % n) + ",0.5\n";
  }
  auto t = MustBuild("edge_list { csv: '" + WriteFile("shift.csv", csv) + "' weighted: true }", n);
  auto summary = SummarizeMixing(*t, config::UNIFORM_ROWS);  // the rule is ignored
  ASSERT_TRUE(summary.ok()) << summary.status();
  EXPECT_EQ(summary->rule, MixingRule::kCustom);
  EXPECT_EQ(summary->properties.Describe(), "doubly stochastic, not symmetric");
  ASSERT_TRUE(summary->gap.value.has_value());
  EXPECT_NEAR(*summary->gap.value, 1 - std::cos(std::numbers::pi / n), 1e-12);
  EXPECT_THAT(summary->text, HasSubstr("custom: doubly stochastic, not symmetric; spectral gap"));
}

TEST(MixingTest, RowStochasticCustomMatrixHasNoGap) {
  const std::string path =
      WriteFile("rows.csv", "i,j,weight\n0,0,0.5\n0,1,0.5\n1,0,0.25\n1,1,0.75\n");
  auto t = MustBuild("edge_list { csv: '" + path + "' weighted: true }", 2);
  auto summary = SummarizeMixing(*t, config::MIXING_UNSPECIFIED);
  ASSERT_TRUE(summary.ok());
  EXPECT_THAT(summary->text,
              HasSubstr("custom: row-stochastic only (not doubly stochastic); not doubly "
                        "stochastic: no spectral gap"));
}

TEST(MixingTest, RowSumErrorsNameTheRow) {
  auto w = MixingMatrix::FromRows({{{0, 0.5}, {1, 0.5}}, {{0, 0.5}, {1, 0.4}}, {{2, 1.0}}});
  ASSERT_TRUE(w.ok());
  absl::Status s = CheckRowsSumToOne(*w);
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(s.message(), "row 1 of the mixing matrix sums to 0.9, not 1");
  EXPECT_EQ(CheckMixing(*w).Describe(), "rows do not sum to 1 (row 1 sums to 0.9)");
  EXPECT_FALSE(ComputeSpectralGap(*w).value.has_value());
  // Within 1e-9 is fine.
  EXPECT_TRUE(CheckRowsSumToOne(*MixingMatrix::FromRows({{{0, 1 + 1e-10}}})).ok());
}

TEST(MixingTest, FromRowsRejectsMalformedRows) {
  EXPECT_THAT(MixingMatrix::FromRows({{{1, 0.5}, {0, 0.5}}, {{1, 1}}}).status().message(),
              HasSubstr("row 0 of the mixing matrix: columns must be strictly ascending"));
  EXPECT_THAT(MixingMatrix::FromRows({{{0, 0.5}, {2, 0.5}}, {{1, 1}}}).status().message(),
              HasSubstr("row 0 of the mixing matrix has column 2, but the matrix has 2"));
  EXPECT_THAT(MixingMatrix::FromRows({{{0, NAN}}}).status().message(), HasSubstr("not finite"));
}

TEST(MixingTest, TimeVaryingUniformRowsSummary) {
  const uint32_t n = 20, k = 3;
  auto t = MustBuild("time_varying { k: 3 }", n);
  auto summary = SummarizeMixing(*t, config::UNIFORM_ROWS);
  ASSERT_TRUE(summary.ok()) << summary.status();
  EXPECT_FALSE(summary->properties.doubly_stochastic());
  EXPECT_THAT(summary->text,
              HasSubstr("time_varying(k=3, seed=1), uniform rows: row-stochastic only (not "
                        "doubly stochastic) in each round; spectral gap"));
  // E[W] = a I + b (J - I) with a = 1/(k+1) exactly.
  const double a = 1.0 / (k + 1), b = (1 - a) / (n - 1);
  ASSERT_TRUE(summary->gap.value.has_value());
  EXPECT_NEAR(*summary->gap.value, 1 - std::abs(a - b), 1e-12);
}

TEST(MixingTest, TimeVaryingMetropolisHastingsSummary) {
  auto t = MustBuild("time_varying { k: 3 }", 20);
  auto summary = SummarizeMixing(*t, config::METROPOLIS_HASTINGS);
  ASSERT_TRUE(summary.ok());
  EXPECT_TRUE(summary->properties.symmetric && summary->properties.doubly_stochastic());
  EXPECT_THAT(summary->text, HasSubstr("symmetric, doubly stochastic in each round"));
  // The gap of E[W] = a I + b (J - I), a = the mean diagonal over 16 rounds.
  double diagonal = 0;
  for (uint64_t round = 0; round < 16; ++round) {
    auto w = BuildMixing(*t, *t->GraphAt(round), config::METROPOLIS_HASTINGS);
    for (uint32_t i = 0; i < 20; ++i) diagonal += w->at(i, i);
  }
  const double a = diagonal / (16 * 20), b = (1 - a) / 19;
  ASSERT_TRUE(summary->gap.value.has_value());
  EXPECT_NEAR(*summary->gap.value, 1 - std::abs(a - b), 1e-12);
  EXPECT_GT(*summary->gap.value, 0.5);
  EXPECT_LT(*summary->gap.value, 1.0);
}

TEST(MixingTest, StaticSummaryAndDenseLimit) {
  auto t = MustBuild("ring {}", 10);
  auto summary = SummarizeMixing(*t, config::MIXING_UNSPECIFIED);
  ASSERT_TRUE(summary.ok());
  EXPECT_THAT(summary->text, HasSubstr("ring, Metropolis-Hastings: symmetric, doubly stochastic; "
                                       "spectral gap 0.127322"));
  EXPECT_THAT(summary->text, HasSubstr("(1 - |lambda_2|)"));
  auto skipped = SummarizeMixing(*t, config::MIXING_UNSPECIFIED, {.max_dense_clients = 5});
  ASSERT_TRUE(skipped.ok());
  EXPECT_FALSE(skipped->gap.value.has_value());
  EXPECT_THAT(skipped->text, HasSubstr("skipped: 10 clients is above the dense limit of 5"));
  // One client: nothing to mix.
  auto one = MustBuild("ring {}", 1);
  EXPECT_EQ(
      *ComputeSpectralGap(*BuildMixing(*one, *one->GraphAt(0), config::MIXING_UNSPECIFIED)).value,
      1.0);
}

}  // namespace
}  // namespace fedsim
