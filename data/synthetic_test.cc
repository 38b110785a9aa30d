#include "data/synthetic.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <numeric>
#include <tuple>
#include <vector>

#include "absl/status/status.h"
#include "data/dataset.h"
#include "gtest/gtest.h"

namespace fedsim {
namespace {

std::vector<float> Rows(const Dataset& d) {
  std::vector<float> x(d.size() * d.dim());
  std::vector<int32_t> y(d.size());
  d.GatherRange(0, d.size(), x.data(), y.data());
  return x;
}

TEST(SyntheticTest, ShapesSizesAndSplit) {
  SyntheticOptions opt;
  absl::StatusOr<FederatedData> fd = GenerateSynthetic(opt, 20, 7);
  ASSERT_TRUE(fd.ok()) << fd.status();
  EXPECT_EQ(fd->train.dim(), 60);
  EXPECT_EQ(fd->train.shape().channels, 60);
  EXPECT_EQ(fd->train.num_classes(), 10);
  EXPECT_EQ(fd->test.dim(), 60);
  ASSERT_EQ(fd->client_train.size(), 20u);
  ASSERT_EQ(fd->client_test.size(), 20u);
  size_t train_rows = 0, test_rows = 0;
  std::vector<size_t> sizes;
  for (int k = 0; k < 20; ++k) {
    const size_t n = fd->client_train[k].size() + fd->client_test[k].size();
    sizes.push_back(n);
    EXPECT_GE(n, 50u);
    EXPECT_EQ(fd->client_train[k].size(), n * 9 / 10);
    EXPECT_EQ(n, SyntheticModelForClient(opt, k, 7).num_examples);
    // Client after client, contiguous.
    for (uint32_t i : fd->client_train[k]) EXPECT_EQ(i, train_rows++);
    for (uint32_t i : fd->client_test[k]) EXPECT_EQ(i, test_rows++);
  }
  EXPECT_EQ(train_rows, fd->train.size());
  EXPECT_EQ(test_rows, fd->test.size());
  // Sizes vary (lognormal), not all equal.
  EXPECT_NE(*std::min_element(sizes.begin(), sizes.end()),
            *std::max_element(sizes.begin(), sizes.end()));
}

TEST(SyntheticTest, LognormalSizesFollowTheSpec) {
  // n_k - 50 = int(exp(N(4, 2))): its log median is 4.
  SyntheticOptions opt;
  std::vector<double> logs;
  for (int k = 0; k < 2001; ++k) {
    const size_t n = SyntheticModelForClient(opt, k, 3).num_examples;
    ASSERT_GE(n, 50u);
    logs.push_back(std::log(static_cast<double>(n - 50) + 0.5));
  }
  std::nth_element(logs.begin(), logs.begin() + 1000, logs.end());
  EXPECT_NEAR(logs[1000], 4.0, 0.25);
}

TEST(SyntheticTest, ExamplesPerClientOverrides) {
  SyntheticOptions opt;
  opt.examples_per_client = 40;
  absl::StatusOr<FederatedData> fd = GenerateSynthetic(opt, 3, 1);
  ASSERT_TRUE(fd.ok());
  for (int k = 0; k < 3; ++k) {
    EXPECT_EQ(fd->client_train[k].size(), 36u);
    EXPECT_EQ(fd->client_test[k].size(), 4u);
  }
}

TEST(SyntheticTest, DeterministicPerSeed) {
  SyntheticOptions opt;
  absl::StatusOr<FederatedData> a = GenerateSynthetic(opt, 5, 11);
  absl::StatusOr<FederatedData> b = GenerateSynthetic(opt, 5, 11);
  absl::StatusOr<FederatedData> c = GenerateSynthetic(opt, 5, 12);
  ASSERT_TRUE(a.ok() && b.ok() && c.ok());
  EXPECT_EQ(Rows(a->train), Rows(b->train));
  EXPECT_EQ(Rows(a->test), Rows(b->test));
  EXPECT_TRUE(std::equal(a->train.labels().begin(), a->train.labels().end(),
                         b->train.labels().begin(), b->train.labels().end()));
  EXPECT_NE(Rows(a->train), Rows(c->train));
}

TEST(SyntheticTest, ClientDataDoesNotDependOnNumClients) {
  SyntheticOptions opt;
  absl::StatusOr<FederatedData> five = GenerateSynthetic(opt, 5, 21);
  absl::StatusOr<FederatedData> ten = GenerateSynthetic(opt, 10, 21);
  ASSERT_TRUE(five.ok() && ten.ok());
  for (int k = 0; k < 5; ++k) {
    for (auto [tr, a, b] : {std::tuple{true, &five->client_train[k], &ten->client_train[k]},
                            std::tuple{false, &five->client_test[k], &ten->client_test[k]}}) {
      const Dataset& da = tr ? five->train : five->test;
      const Dataset& db = tr ? ten->train : ten->test;
      ASSERT_EQ(a->size(), b->size());
      std::vector<float> xa(a->size() * 60), xb(b->size() * 60);
      std::vector<int32_t> ya(a->size()), yb(b->size());
      da.Gather(*a, xa.data(), ya.data());
      db.Gather(*b, xb.data(), yb.data());
      EXPECT_EQ(xa, xb) << "client " << k;
      EXPECT_EQ(ya, yb) << "client " << k;
    }
  }
}

std::vector<int32_t> Labels(const Dataset& d) {
  return std::vector<int32_t>(d.labels().begin(), d.labels().end());
}

// Laziness: a client generated alone (as a worker slot does when it trains
// it) has exactly its rows of the all-at-once build, both splits, and the
// test set cut at a row limit is the full test set's prefix.
TEST(SyntheticTest, OneClientAloneEqualsItsRowsInTheFullBuild) {
  SyntheticOptions opt;
  absl::StatusOr<FederatedData> full = GenerateSynthetic(opt, 8, 33);
  ASSERT_TRUE(full.ok());
  for (int k = 0; k < 8; ++k) {
    EXPECT_EQ(SyntheticClientSize(opt, k, 33), SyntheticModelForClient(opt, k, 33).num_examples);
    for (auto [split, whole, rows] :
         {std::tuple{SyntheticSplit::kTrain, &full->train, &full->client_train[k]},
          std::tuple{SyntheticSplit::kTest, &full->test, &full->client_test[k]}}) {
      absl::StatusOr<Dataset> alone = GenerateSyntheticClient(opt, k, 33, split);
      ASSERT_TRUE(alone.ok()) << alone.status();
      EXPECT_EQ(Rows(*alone), Rows(whole->Subset(*rows))) << "client " << k;
      EXPECT_EQ(Labels(*alone), Labels(whole->Subset(*rows))) << "client " << k;
    }
  }
  const size_t cut = full->client_test[0].size() + 3;  // client 0's rows and 3 of client 1's
  absl::StatusOr<Dataset> test = GenerateSyntheticTestSet(opt, 8, 33, cut);
  ASSERT_TRUE(test.ok());
  std::vector<uint32_t> prefix(cut);
  std::iota(prefix.begin(), prefix.end(), 0u);
  EXPECT_EQ(Rows(*test), Rows(full->test.Subset(prefix)));
  EXPECT_EQ(Labels(*test), Labels(full->test.Subset(prefix)));
  absl::StatusOr<Dataset> all = GenerateSyntheticTestSet(opt, 8, 33, 0);
  ASSERT_TRUE(all.ok());
  EXPECT_EQ(Rows(*all), Rows(full->test));
  EXPECT_EQ(GenerateSyntheticClient(opt, -1, 33, SyntheticSplit::kTrain).status().code(),
            absl::StatusCode::kInvalidArgument);
}

// Every label is argmax(x W_k + b_k) of that client's model; in the IID
// variant all clients share W, b and have mean-zero features.
void CheckLabelsAndModels(bool iid) {
  SyntheticOptions opt;
  opt.iid = iid;
  opt.examples_per_client = 200;
  const uint64_t seed = 5;
  absl::StatusOr<FederatedData> fd = GenerateSynthetic(opt, 6, seed);
  ASSERT_TRUE(fd.ok());
  SyntheticClientModel m0 = SyntheticModelForClient(opt, 0, seed);
  std::vector<double> client_mean_x0(6);
  for (int k = 0; k < 6; ++k) {
    SyntheticClientModel m = SyntheticModelForClient(opt, k, seed);
    if (iid) {
      EXPECT_EQ(m.w, m0.w);
      EXPECT_EQ(m.b, m0.b);
      for (double v : m.mean) EXPECT_EQ(v, 0.0);
    } else if (k > 0) {
      EXPECT_NE(m.w, m0.w);
      EXPECT_NE(m.mean, m0.mean);
    }
    const auto& rows = fd->client_train[k];
    std::vector<float> x(rows.size() * 60);
    std::vector<int32_t> y(rows.size());
    fd->train.Gather(rows, x.data(), y.data());
    double sum0 = 0.0;
    for (size_t r = 0; r < rows.size(); ++r) {
      EXPECT_EQ(y[r], SyntheticLabel(m, x.data() + r * 60));
      // In the IID variant client 0's model labels every client's rows.
      if (iid) {
        EXPECT_EQ(y[r], SyntheticLabel(m0, x.data() + r * 60));
      }
      sum0 += x[r * 60];
    }
    client_mean_x0[k] = sum0 / rows.size();
    // Feature 0 has variance 1, so its sample mean is within ~0.07 of v_k[0].
    EXPECT_NEAR(client_mean_x0[k], m.mean[0], 0.3);
  }
}

TEST(SyntheticTest, NonIidLabelsComeFromEachClientsModel) { CheckLabelsAndModels(false); }
TEST(SyntheticTest, IidSharesOneModelAndZeroMeanFeatures) { CheckLabelsAndModels(true); }

TEST(SyntheticTest, FeatureVarianceFollowsSigma) {
  SyntheticOptions opt;
  opt.examples_per_client = 4000;
  absl::StatusOr<FederatedData> fd = GenerateSynthetic(opt, 1, 9);
  ASSERT_TRUE(fd.ok());
  std::vector<float> x = Rows(fd->train);
  const size_t n = fd->train.size();
  for (int j : {0, 9, 59}) {
    double s = 0, s2 = 0;
    for (size_t r = 0; r < n; ++r) {
      s += x[r * 60 + j];
      s2 += double{x[r * 60 + j]} * x[r * 60 + j];
    }
    const double var = s2 / n - (s / n) * (s / n);
    const double want = std::pow(j + 1.0, -1.2);
    EXPECT_NEAR(var / want, 1.0, 0.1) << "feature " << j;
  }
}

TEST(SyntheticTest, AlphaBetaZeroGiveSameMeanAcrossClients) {
  // alpha = beta = 0: u_k = B_k = 0, so v_k ~ N(0, 1) and W_k ~ N(0, 1).
  SyntheticOptions opt;
  opt.alpha = 0.0;
  opt.beta = 0.0;
  SyntheticClientModel m = SyntheticModelForClient(opt, 3, 1);
  double s = 0;
  for (double w : m.w) s += w;
  EXPECT_NEAR(s / m.w.size(), 0.0, 0.25);
}

TEST(SyntheticTest, ErrorCases) {
  SyntheticOptions opt;
  EXPECT_EQ(GenerateSynthetic(opt, 0, 1).status().code(), absl::StatusCode::kInvalidArgument);
  opt.alpha = -1;
  EXPECT_EQ(GenerateSynthetic(opt, 2, 1).status().code(), absl::StatusCode::kInvalidArgument);
  opt = SyntheticOptions();
  opt.examples_per_client = 1;
  EXPECT_EQ(GenerateSynthetic(opt, 2, 1).status().code(), absl::StatusCode::kInvalidArgument);
  opt = SyntheticOptions();
  opt.examples_per_client = kMaxSyntheticRows / 2 + 1;
  absl::StatusOr<FederatedData> fd = GenerateSynthetic(opt, 2, 1);
  EXPECT_EQ(fd.status().code(), absl::StatusCode::kResourceExhausted);
}

}  // namespace
}  // namespace fedsim
