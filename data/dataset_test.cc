#include "data/dataset.h"

#include <cstdint>
#include <vector>

#include "gtest/gtest.h"

namespace fedsim {
namespace {

TEST(DatasetTest, FromU8ScalesByOneOver255) {
  Dataset d = Dataset::FromU8({1, 1, 2}, 3, {0, 255, 51, 102, 7, 8}, {2, 0, 1});
  EXPECT_EQ(d.size(), 3u);
  EXPECT_EQ(d.dim(), 2);
  EXPECT_EQ(d.num_classes(), 3);
  std::vector<uint32_t> idx = {1, 0};
  float x[4];
  int32_t y[2];
  d.Gather(idx, x, y);
  EXPECT_FLOAT_EQ(x[0], 0.2f);
  EXPECT_FLOAT_EQ(x[1], 0.4f);
  EXPECT_FLOAT_EQ(x[2], 0.0f);
  EXPECT_FLOAT_EQ(x[3], 1.0f);
  EXPECT_EQ(y[0], 0);
  EXPECT_EQ(y[1], 2);
}

TEST(DatasetTest, FromF32ReturnsValuesAsTheyAre) {
  Dataset d = Dataset::FromF32({2, 1, 1}, 2, {1.5f, -2.f, 3.f, 4.f, 5.f, 6.f}, {1, 0, 1});
  float x[4];
  int32_t y[2];
  d.GatherRange(1, 3, x, y);
  EXPECT_EQ(x[0], 3.f);
  EXPECT_EQ(x[1], 4.f);
  EXPECT_EQ(x[2], 5.f);
  EXPECT_EQ(x[3], 6.f);
  EXPECT_EQ(y[0], 0);
  EXPECT_EQ(y[1], 1);
}

TEST(DatasetTest, GatherRangeMatchesGather) {
  std::vector<uint8_t> px(5 * 3);
  for (size_t i = 0; i < px.size(); ++i) px[i] = static_cast<uint8_t>(i * 17);
  Dataset d = Dataset::FromU8({1, 3, 1}, 4, px, {0, 1, 2, 3, 0});
  std::vector<uint32_t> idx = {2, 3, 4};
  float a[9], b[9];
  int32_t ya[3], yb[3];
  d.Gather(idx, a, ya);
  d.GatherRange(2, 5, b, yb);
  for (int i = 0; i < 9; ++i) EXPECT_EQ(a[i], b[i]);
  for (int i = 0; i < 3; ++i) EXPECT_EQ(ya[i], yb[i]);
}

TEST(DatasetTest, SubsetCopiesRowsInOrder) {
  for (bool as_float : {false, true}) {
    Dataset d = as_float ? Dataset::FromF32({1, 1, 2}, 3, {0, 1, 2, 3, 4, 5}, {0, 1, 2})
                         : Dataset::FromU8({1, 1, 2}, 3, {0, 1, 2, 3, 4, 5}, {0, 1, 2});
    std::vector<uint32_t> idx = {2, 0, 2};
    Dataset s = d.Subset(idx);
    ASSERT_EQ(s.size(), 3u);
    EXPECT_EQ(s.dim(), 2);
    EXPECT_EQ(s.num_classes(), 3);
    float want[6], got[6];
    int32_t ywant[3], ygot[3];
    d.Gather(idx, want, ywant);
    s.GatherRange(0, 3, got, ygot);
    for (int i = 0; i < 6; ++i) EXPECT_EQ(want[i], got[i]);
    for (int i = 0; i < 3; ++i) EXPECT_EQ(ywant[i], ygot[i]);
  }
}

TEST(DatasetTest, EmptyDataset) {
  Dataset d;
  EXPECT_EQ(d.size(), 0u);
  Dataset e = Dataset::FromF32({4, 1, 1}, 2, {}, {});
  EXPECT_EQ(e.size(), 0u);
  EXPECT_EQ(e.Subset({}).size(), 0u);
}

}  // namespace
}  // namespace fedsim
