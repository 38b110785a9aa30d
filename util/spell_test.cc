#include "util/spell.h"

#include <string_view>
#include <vector>

#include "gtest/gtest.h"

namespace fedsim {
namespace {

TEST(SpellTest, EditDistance) {
  EXPECT_EQ(EditDistance("", ""), 0);
  EXPECT_EQ(EditDistance("fedbuff", "fedbuff"), 0);
  EXPECT_EQ(EditDistance("fedbuf", "fedbuff"), 1);
  EXPECT_EQ(EditDistance("kitten", "sitting"), 3);
}

TEST(SpellTest, SuggestsClosestOnly) {
  std::vector<std::string_view> names = {"fedavg", "fedbuff", "fedasync", "fedfix"};
  EXPECT_EQ(SpellCheck("fedbuf", names), "fedbuff");
  EXPECT_EQ(SpellCheck("fedasink", names), "fedasync");
  EXPECT_EQ(SpellCheck("gossip", names), "");
  EXPECT_EQ(DidYouMean("fedfx", names), " (did you mean 'fedfix'?)");
  EXPECT_EQ(DidYouMean("zzz", names), "");
}

}  // namespace
}  // namespace fedsim
