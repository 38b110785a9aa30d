#include "util/spare_buffers.h"

#include <thread>
#include <vector>

#include "gtest/gtest.h"

namespace fedsim {
namespace {

TEST(SpareBuffersTest, AGivenVectorComesBackWithItsMemoryAndNoContents) {
  SpareBuffers<int64_t> spare(2);
  std::vector<int64_t> v(1000, 7);
  const int64_t* memory = v.data();
  spare.Give(std::move(v));
  EXPECT_EQ(spare.kept(), 1u);
  std::vector<int64_t> again = spare.Take(1000);
  EXPECT_EQ(again.data(), memory);
  EXPECT_TRUE(again.empty());
  EXPECT_GE(again.capacity(), 1000u);
  EXPECT_EQ(spare.kept(), 0u);
}

TEST(SpareBuffersTest, TooSmallOnesStayAndANewOneIsMade) {
  SpareBuffers<int64_t> spare(2);
  spare.Give(std::vector<int64_t>(10));
  std::vector<int64_t> big = spare.Take(1000);
  EXPECT_GE(big.capacity(), 1000u);
  EXPECT_TRUE(big.empty());
  EXPECT_EQ(spare.kept(), 1u);  // the small one is still there
  EXPECT_GE(spare.Take(5).capacity(), 10u);
}

TEST(SpareBuffersTest, TakeSizedHandsBackTheMemoryUnzeroed) {
  SpareBuffers<int64_t> spare(2);
  std::vector<int64_t> v(1000, 7);
  const int64_t* memory = v.data();
  spare.Give(std::move(v));
  std::vector<int64_t> again = spare.TakeSized(600);
  EXPECT_EQ(again.data(), memory);
  EXPECT_EQ(again, std::vector<int64_t>(600, 7));  // not zeroed: the caller overwrites
  EXPECT_EQ(spare.kept(), 0u);
  // Nothing kept with room: a new one, value-initialized.
  EXPECT_EQ(spare.TakeSized(5), std::vector<int64_t>(5, 0));
  spare.Give(std::move(again));
  std::vector<int64_t> grown = spare.TakeSized(900);  // within its capacity
  EXPECT_EQ(grown.data(), memory);
  EXPECT_EQ(grown.size(), 900u);
  EXPECT_EQ(grown[599], 7);
  EXPECT_EQ(grown[600], 0);  // the part beyond the given size is value-initialized
}

TEST(SpareBuffersTest, KeepsAtMostItsBoundAndNothingEmpty) {
  SpareBuffers<int> spare(2);
  spare.Give(std::vector<int>());
  EXPECT_EQ(spare.kept(), 0u);
  for (int i = 0; i < 5; ++i) spare.Give(std::vector<int>(100));
  EXPECT_EQ(spare.kept(), 2u);
}

TEST(SpareBuffersTest, TakeAndGiveFromManyThreads) {
  SpareBuffers<int> spare(4);
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&spare] {
      for (int i = 0; i < 1000; ++i) {
        std::vector<int> v = spare.Take(64);
        v.assign(64, i);
        spare.Give(std::move(v));
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_LE(spare.kept(), 4u);
  EXPECT_GE(spare.kept(), 1u);
}

}  // namespace
}  // namespace fedsim
