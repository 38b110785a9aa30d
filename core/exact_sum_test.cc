#include "core/exact_sum.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>
#include <random>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace fedsim {
namespace {

using ::testing::HasSubstr;

struct Term {
  double w;
  std::vector<float> x;
};

std::vector<Term> RandomTerms(size_t count, size_t n, uint32_t seed) {
  std::mt19937 gen(seed);
  std::normal_distribution<float> value(0.0f, 0.05f);
  std::uniform_real_distribution<double> weight(0.1, 3.0);
  std::vector<Term> terms(count);
  for (Term& t : terms) {
    t.w = weight(gen);
    t.x.resize(n);
    for (float& v : t.x) v = value(gen);
    t.x[0] = 1e-12f;  // far below the resolution
    t.x[1] = -7.25f;
  }
  return terms;
}

TEST(ExactSumTest, OrderAndGroupingDoNotChangeABit) {
  const size_t n = 1003;
  const std::vector<Term> terms = RandomTerms(24, n, 5);
  ExactSum forward(n);
  for (const Term& t : terms) ASSERT_TRUE(forward.Add(t.w, t.x).ok());

  std::vector<size_t> order(terms.size());
  std::iota(order.begin(), order.end(), 0);
  std::mt19937 gen(9);
  for (int trial = 0; trial < 5; ++trial) {
    std::shuffle(order.begin(), order.end(), gen);
    // Three partial sums of uneven sizes (workers), merged in another order.
    ExactSum parts[3] = {ExactSum(n), ExactSum(n), ExactSum(n)};
    for (size_t k = 0; k < order.size(); ++k) {
      const Term& t = terms[order[k]];
      ASSERT_TRUE(parts[k % 5 == 0 ? 0 : (k % 2 == 0 ? 1 : 2)].Add(t.w, t.x).ok());
    }
    ExactSum merged(n);
    for (int p : {2, 0, 1}) ASSERT_TRUE(merged.Merge(parts[p]).ok());
    EXPECT_TRUE(merged == forward) << "trial " << trial;
  }
}

TEST(ExactSumTest, WithinHalfAUnitPerTermOfTheRealSum) {
  const size_t n = 257;
  const std::vector<Term> terms = RandomTerms(10, n, 11);
  ExactSum sum(n);
  for (const Term& t : terms) ASSERT_TRUE(sum.Add(t.w, t.x).ok());
  const double unit = std::ldexp(1.0, -ExactSum::kFractionBits);
  for (size_t j = 0; j < n; ++j) {
    long double real = 0;
    for (const Term& t : terms) real += static_cast<long double>(t.w) * t.x[j];
    const double got = static_cast<double>(sum.values()[j]) * unit;
    // Each term rounds once (half a unit) and w * x in double adds far less.
    EXPECT_LE(std::fabs(got - static_cast<double>(real)), terms.size() * 0.5 * unit * 1.01) << j;
  }
}

TEST(ExactSumTest, RoundsEachTermToNearestWithTiesToEven) {
  const float half = std::ldexp(1.0f, -33);  // half a unit
  ExactSum sum(6);
  const std::vector<float> x = {half, 3 * half, -half, -3 * half, 5 * half, 0.0f};
  ASSERT_TRUE(sum.Add(1.0, x).ok());
  EXPECT_THAT(sum.values(), ::testing::ElementsAre(0, 2, 0, -2, 2, 0));
  ASSERT_TRUE(sum.Add(1.0, x).ok());  // each term rounds alone: 0 + 0, not round(1)
  EXPECT_EQ(sum.values()[0], 0);
}

TEST(ExactSumTest, RefusesBadInputAndLeavesTheSumAsItWas) {
  const size_t n = 40;
  ExactSum sum(n);
  std::vector<float> ok(n, 0.5f);
  ASSERT_TRUE(sum.Add(2.0, ok).ok());
  const ExactSum before = sum;
  for (float bad : {std::numeric_limits<float>::quiet_NaN(), std::numeric_limits<float>::infinity(),
                    -std::numeric_limits<float>::infinity(), 262144.0f /* x 2 = 2^19 */}) {
    std::vector<float> x = ok;
    x[n - 3] = bad;
    absl::Status s = sum.Add(2.0, x);
    EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << bad;
    EXPECT_THAT(s.message(), HasSubstr(absl::StrCat("value ", n - 3, " is")));
    EXPECT_TRUE(sum == before) << bad;
  }
  std::vector<float> edge = ok;
  edge[0] = 262143.5f;  // x 2 = 2^19 - 1: inside the bound
  EXPECT_TRUE(sum.Add(2.0, edge).ok());
  sum = before;
  EXPECT_EQ(sum.Add(std::nan(""), ok).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(sum.Add(1.0, std::vector<float>(n + 1)).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(sum.Merge(ExactSum(n - 1)).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(sum == before);
}

TEST(ExactSumTest, AssignIsAZeroSumPlusOneTermOverWhateverWasThere) {
  const size_t n = 1003;
  const std::vector<Term> terms = RandomTerms(3, n, 11);
  ExactSum added(n);
  ASSERT_TRUE(added.Add(terms[0].w, terms[0].x).ok());
  // Reused memory holding another sum of the same size, a longer one, a
  // shorter one and none: the old values leave no trace.
  ExactSum same(n);
  ASSERT_TRUE(same.Add(terms[1].w, terms[1].x).ok());
  ExactSum longer(n + 17);
  ASSERT_TRUE(longer.Add(1.5, std::vector<float>(n + 17, 0.25f)).ok());
  ExactSum shorter(n / 2);
  ASSERT_TRUE(shorter.Add(1.5, std::vector<float>(n / 2, -0.25f)).ok());
  ExactSum none;
  for (ExactSum* sum : {&same, &longer, &shorter, &none}) {
    ASSERT_TRUE(sum->Assign(terms[0].w, terms[0].x).ok());
    EXPECT_TRUE(*sum == added);
    // And it sums on from there like any other.
    ASSERT_TRUE(sum->Add(terms[2].w, terms[2].x).ok());
  }
  ASSERT_TRUE(added.Add(terms[2].w, terms[2].x).ok());
  EXPECT_TRUE(same == added);
  EXPECT_TRUE(none == added);
}

TEST(ExactSumTest, AssignRefusesWhatAddRefusesAndLeavesZeros) {
  const size_t n = 40;
  std::vector<float> ok(n, 0.5f);
  for (float bad : {std::numeric_limits<float>::quiet_NaN(), std::numeric_limits<float>::infinity(),
                    262144.0f /* x 2 = 2^19 */}) {
    std::vector<float> x = ok;
    x[n - 3] = bad;
    x[n - 1] = bad;
    ExactSum sum(n);
    ASSERT_TRUE(sum.Add(1.0, ok).ok());
    absl::Status s = sum.Assign(2.0, x);
    EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << bad;
    EXPECT_THAT(s.message(), HasSubstr(absl::StrCat("value ", n - 3, " is")));
    EXPECT_TRUE(sum == ExactSum(n)) << bad;
  }
  ExactSum sum(n);
  ASSERT_TRUE(sum.Add(1.0, ok).ok());
  EXPECT_EQ(sum.Assign(std::nan(""), ok).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(sum == ExactSum(n));
  std::vector<float> edge = ok;
  edge[0] = 262143.5f;  // x 2 = 2^19 - 1: inside the bound
  EXPECT_TRUE(sum.Assign(2.0, edge).ok());
  EXPECT_EQ(sum.values()[0], int64_t{524287} << 32);
}

TEST(ExactSumTest, IntoValuesHeldElsewhereGivesTheSameBitsAndRefusals) {
  const size_t n = 1003;
  const std::vector<Term> terms = RandomTerms(3, n, 5);
  ExactSum sum;
  ASSERT_TRUE(sum.Assign(terms[0].w, terms[0].x).ok());
  ASSERT_TRUE(sum.Add(terms[1].w, terms[1].x).ok());
  // Memory that held something else, as a reused shared-memory slot does.
  std::vector<int64_t> slot(n, int64_t{-12345});
  ASSERT_TRUE(ExactSum::AssignInto(slot, terms[0].w, terms[0].x).ok());
  ASSERT_TRUE(ExactSum::AddInto(slot, terms[1].w, terms[1].x).ok());
  EXPECT_TRUE(std::equal(slot.begin(), slot.end(), sum.values().begin(), sum.values().end()));

  // A refused term leaves the values as they were (Add) or zeros (Assign).
  std::vector<float> bad = terms[2].x;
  bad[n - 2] = std::numeric_limits<float>::infinity();
  const std::vector<int64_t> before = slot;
  absl::Status s = ExactSum::AddInto(slot, terms[2].w, bad);
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(s.message(), HasSubstr(absl::StrCat("value ", n - 2, " is")));
  EXPECT_EQ(slot, before);
  EXPECT_EQ(ExactSum::AddInto(slot, 1.0, std::vector<float>(n - 1)).code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(slot, before);
  EXPECT_EQ(ExactSum::AssignInto(slot, 1.0, std::vector<float>(n + 1)).code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(slot, before);  // a size mismatch writes nothing
  EXPECT_EQ(ExactSum::AssignInto(slot, terms[2].w, bad).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(slot, std::vector<int64_t>(n, 0));
  EXPECT_EQ(ExactSum::AssignInto(slot, std::nan(""), terms[2].x).code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(slot, std::vector<int64_t>(n, 0));
}

TEST(ExactSumTest, OverflowIsRefusedNotWrapped) {
  ExactSum sum(3);
  const std::vector<float> big = {524287.0f, -524287.0f, 1.0f};
  // 4096 terms of 2^19 - 1 stay below 2^31; the next one does not.
  for (int i = 0; i < 4096; ++i) ASSERT_TRUE(sum.Add(1.0, big).ok()) << i;
  const ExactSum full = sum;
  absl::Status s = sum.Add(1.0, big);
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(s.message(), HasSubstr("index 0"));
  EXPECT_TRUE(sum == full);
  EXPECT_EQ(sum.Merge(full).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(sum == full);
  // The negative side holds one more unit than the positive: still refused.
  EXPECT_EQ(sum.Add(-1.0, std::vector<float>{-524287.0f, 524287.0f, 0.0f}).code(),
            absl::StatusCode::kInvalidArgument);
}

TEST(ExactSumTest, ScaledOutputs) {
  ExactSum sum(3);
  ASSERT_TRUE(sum.Add(1.0, std::vector<float>{1.0f, -0.5f, 0.25f}).ok());
  ASSERT_TRUE(sum.Add(3.0, std::vector<float>{1.0f, 0.5f, 0.0f}).ok());
  std::vector<float> mean(3);
  sum.ScaledInto(0.25, mean);  // total weight 4
  EXPECT_THAT(mean, ::testing::ElementsAre(1.0f, 0.25f, 0.0625f));
  std::vector<float> model = {10.0f, 20.0f, 30.0f};
  sum.AddScaledTo(0.5, model);
  EXPECT_THAT(model, ::testing::ElementsAre(12.0f, 20.5f, 30.125f));
}

TEST(ExactSumTest, HalvesRoundTripAndMalformedOnesAreRefused) {
  const std::vector<int64_t> values = {0,
                                       1,
                                       -1,
                                       std::numeric_limits<int64_t>::max(),
                                       std::numeric_limits<int64_t>::min(),
                                       int64_t{1} << 40,
                                       -(int64_t{3} << 35) + 7};
  const ExactSum sum = ExactSum::FromValues(values);
  std::vector<double> high, low;
  sum.ToHalves(&high, &low);
  absl::StatusOr<ExactSum> back = ExactSum::FromHalves(high, low);
  ASSERT_TRUE(back.ok()) << back.status();
  EXPECT_TRUE(*back == sum);
  for (auto [h, l] : std::vector<std::pair<double, double>>{
           {0.5, 0}, {0, -1}, {0, 4294967296.0}, {2147483648.0, 0}, {std::nan(""), 0}}) {
    EXPECT_FALSE(ExactSum::FromHalves(std::vector<double>{h}, std::vector<double>{l}).ok())
        << h << " " << l;
  }
  EXPECT_FALSE(ExactSum::FromHalves(high, std::vector<double>(1)).ok());
}

}  // namespace
}  // namespace fedsim

namespace fedsim {
namespace {

TEST(ExactSumTest, TakeValuesHandsOverTheVectorAndLeavesTheSumEmpty) {
  ExactSum sum(3);
  ASSERT_TRUE(sum.Add(1.0, std::vector<float>{1, 2, 3}).ok());
  const int64_t* memory = sum.values().data();
  std::vector<int64_t> values = std::move(sum).TakeValues();
  EXPECT_EQ(values.data(), memory);
  EXPECT_EQ(values, (std::vector<int64_t>{int64_t{1} << 32, int64_t{2} << 32, int64_t{3} << 32}));
  EXPECT_TRUE(sum.empty());  // NOLINT(bugprone-use-after-move): the documented state
}

}  // namespace
}  // namespace fedsim
