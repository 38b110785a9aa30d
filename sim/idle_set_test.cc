#include "sim/idle_set.h"

#include <cstdint>
#include <set>

#include "gtest/gtest.h"
#include "util/rng.h"

namespace fedsim {
namespace {

// Random inserts and erases against std::set: membership, size and every
// rank of Nth agree, across word boundaries and a partial last word.
TEST(IdleSetTest, AgreesWithAnOrderedSetUnderRandomChanges) {
  for (size_t n : {1u, 63u, 64u, 65u, 1000u, 4099u}) {
    IdleSet set(n);
    std::set<size_t> ref;
    Rng rng(7, "idle_set", n);
    for (int op = 0; op < 4000; ++op) {
      const size_t i = rng.NextU64() % n;
      if (rng.NextU64() % 3 == 0) {
        set.Erase(i);
        ref.erase(i);
      } else {
        set.Insert(i);
        ref.insert(i);
      }
      ASSERT_EQ(set.size(), ref.size());
      ASSERT_EQ(set.contains(i), ref.count(i) == 1);
      if (op % 97 == 0) {
        size_t k = 0;
        for (size_t member : ref) ASSERT_EQ(set.Nth(k++), member) << "n=" << n << " k=" << k;
      }
    }
  }
}

TEST(IdleSetTest, FullAndEmptyWords) {
  IdleSet set(256);
  for (size_t i = 0; i < 256; ++i) set.Insert(i);
  for (size_t k = 0; k < 256; ++k) EXPECT_EQ(set.Nth(k), k);
  for (size_t i = 64; i < 192; ++i) set.Erase(i);
  EXPECT_EQ(set.size(), 128u);
  EXPECT_EQ(set.Nth(63), 63u);
  EXPECT_EQ(set.Nth(64), 192u);
  EXPECT_EQ(set.Nth(127), 255u);
  set.Insert(255);  // already there: no change
  EXPECT_EQ(set.size(), 128u);
}

}  // namespace
}  // namespace fedsim
