#include "core/task.h"

#include <memory>
#include <utility>
#include <vector>

#include "gtest/gtest.h"

namespace fedsim {
namespace {

// A recycled FoldedSum gives its values' memory back once the last result
// sharing it is gone, even after the transport that made it.
TEST(FoldedSumTest, ARecycledSumGivesItsMemoryBackWhenTheLastShareGoes) {
  auto spare = std::make_shared<SpareBuffers<int64_t>>(2);
  std::shared_ptr<FoldedSum> folded = NewRecycledFoldedSum(spare);
  folded->sum = ExactSum::FromValues(std::vector<int64_t>(1000, 3));
  const int64_t* memory = folded->sum.values().data();
  std::shared_ptr<const FoldedSum> first = std::move(folded);
  std::shared_ptr<const FoldedSum> second = first;
  std::weak_ptr<SpareBuffers<int64_t>> owner = spare;
  spare.reset();  // the transport is gone; the sums keep the spares alive
  first.reset();
  ASSERT_FALSE(owner.expired());
  EXPECT_EQ(owner.lock()->kept(), 0u);
  std::shared_ptr<SpareBuffers<int64_t>> kept = owner.lock();
  second.reset();
  EXPECT_EQ(kept->kept(), 1u);
  std::vector<int64_t> again = kept->TakeSized(1000);
  EXPECT_EQ(again.data(), memory);
  EXPECT_EQ(again[999], 3);
}

}  // namespace
}  // namespace fedsim
