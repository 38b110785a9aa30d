// The memory estimate, what `fedsim validate` prints of it, and the budget.
#include "config/memory.h"

#include <string>
#include <vector>

#include "config/scenario_test_util.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace fedsim {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::StartsWith;

// McMahan's 2NN on Fashion-MNIST: 784*200+200 + 200*200+200 + 200*10+10.
constexpr uint64_t kMlpParams = 199'210;

TEST(MemoryTest, Formatting) {
  EXPECT_EQ(FormatCount(0), "0");
  EXPECT_EQ(FormatCount(999), "999");
  EXPECT_EQ(FormatCount(199210), "199,210");
  EXPECT_EQ(FormatCount(1234567), "1,234,567");
  EXPECT_EQ(FormatBytes(512), "512 B");
  EXPECT_EQ(FormatBytes(24'000), "0.024 MB");
  EXPECT_EQ(FormatBytes(1'593'680), "1.59 MB");
  EXPECT_EQ(FormatBytes(796'840'000), "797 MB");
  EXPECT_EQ(FormatBytes(8'192'000'000), "8,192 MB");
}

TEST(MemoryTest, PerClientModelsAreCountedAndDescribed) {
  auto s = Parse("num_clients: 1000 stop { max_commits: 1 } algorithm { fedau { method: MIFA } }");
  ASSERT_TRUE(s.ok()) << s.status();
  absl::StatusOr<MemoryEstimate> e = EstimateMemory(*s);
  ASSERT_TRUE(e.ok()) << e.status();
  EXPECT_EQ(e->num_params, kMlpParams);
  EXPECT_EQ(e->rule_bytes, 1000 * kMlpParams * 4);
  EXPECT_EQ(e->engine_bytes, kEngineModelCopies * kMlpParams * 4);
  EXPECT_EQ(e->budget_bytes, 8'192'000'000u);
  EXPECT_THAT(DescribeMemory(*e),
              ElementsAre("model: mlp(784-200-200-10), 199,210 params",
                          "algorithm state: 1,000 clients x 199,210 params x 4 B = 797 MB",
                          "engine: 2 model copies x 199,210 params x 4 B = 1.59 MB",
                          "total: 798 MB of the 8,192 MB budget (limits.memory_budget_mb)"));

  // FedAU proper keeps three counters per client, not models.
  s = Parse("num_clients: 1000 stop { max_commits: 1 } algorithm { fedau { method: FEDAU } }");
  ASSERT_TRUE(s.ok()) << s.status();
  e = EstimateMemory(*s);
  ASSERT_TRUE(e.ok());
  EXPECT_EQ(e->rule_bytes, 1000u * 24);
  EXPECT_EQ(DescribeMemory(*e)[1], "algorithm state: 1,000 clients x 24 B = 0.024 MB");
  // A rule without a state_bytes function.
  s = Parse(kMinimal);
  ASSERT_TRUE(s.ok());
  e = EstimateMemory(*s);
  ASSERT_TRUE(e.ok());
  EXPECT_EQ(e->rule_bytes, 0u);
  EXPECT_EQ(DescribeMemory(*e)[1], "algorithm state: none beyond the model");
}

TEST(MemoryTest, OverBudgetIsRefusedAtValidationNamingTheField) {
  // 20,000 clients x 199,210 params x 4 B = 15,937 MB, plus the engine's
  // 1.59 MB: 15,938 MB > 8,192 MB.
  const std::string text =
      "num_clients: 20000 stop { max_commits: 1 } algorithm { fedau { method: MIFA } }";
  auto s = Parse(text);
  ASSERT_FALSE(s.ok());
  EXPECT_THAT(ErrorLines(s.status()),
              ElementsAre(AllOf(
                  StartsWith("x.textproto: limits.memory_budget_mb (default): the run needs "
                             "about 15,938 MB of server memory (algorithm state: 20,000 clients "
                             "x 199,210 params x 4 B = 15,937 MB; engine: 2 model copies"),
                  HasSubstr("more than the budget of 8,192 MB; raise limits.memory_budget_mb "
                            "to at least 15939"))));
  // Raising the budget (or turning it off) lets it through.
  EXPECT_TRUE(Parse(text, {"limits.memory_budget_mb=16000"}).ok());
  EXPECT_TRUE(Parse(text, {"limits.memory_budget_mb=0"}).ok());
  // A budget written in the file is pointed at.
  s = Parse(text + "\nlimits { memory_budget_mb: 100 }");
  ASSERT_FALSE(s.ok());
  EXPECT_THAT(Msg(s.status()), StartsWith("x.textproto:2:10: limits.memory_budget_mb: the run"));
}

}  // namespace
}  // namespace fedsim
