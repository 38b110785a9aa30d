// The memory estimate, what `fedsim validate` prints of it, and the budget.
#include "config/memory.h"

#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "config/scenario_test_util.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace fedsim {
namespace {

using ::testing::AllOf;
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
                          "clients: 1,000 clients x 184 B = 0.184 MB",
                          "data: Fashion-MNIST: 60,000 training + 10,000 test rows of 784 B and "
                          "their index lists = 55 MB",
                          "total: 854 MB of the 8,192 MB budget (limits.memory_budget_mb)"));

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
  // 1.59 MB, the clients' 3.68 MB and Fashion-MNIST's 55.9 MB: 15,998 MB >
  // 8,192 MB.
  const std::string text =
      "num_clients: 20000 stop { max_commits: 1 } algorithm { fedau { method: MIFA } }";
  auto s = Parse(text);
  ASSERT_FALSE(s.ok());
  EXPECT_THAT(ErrorLines(s.status()),
              ElementsAre(AllOf(
                  StartsWith("x.textproto: limits.memory_budget_mb (default): the run needs "
                             "about 15,998 MB of memory (algorithm state: 20,000 clients "
                             "x 199,210 params x 4 B = 15,937 MB; engine: 2 model copies"),
                  HasSubstr("more than the budget of 8,192 MB; raise limits.memory_budget_mb "
                            "to at least 15998"))));
  // Raising the budget (or turning it off) lets it through.
  EXPECT_TRUE(Parse(text, {"limits.memory_budget_mb=16000"}).ok());
  EXPECT_TRUE(Parse(text, {"limits.memory_budget_mb=0"}).ok());
  // A budget written in the file is pointed at.
  s = Parse(text + "\nlimits { memory_budget_mb: 100 }");
  ASSERT_FALSE(s.ok());
  EXPECT_THAT(Msg(s.status()), StartsWith("x.textproto:2:10: limits.memory_budget_mb: the run"));
}

// Issue 15: 10^8 or 10^9 Synthetic clients used to pass validation and die
// of an uncaught std::bad_alloc. Per-client bookkeeping alone (184 B a
// client) is over the default budget, and the refusal names the estimate,
// its parts and the field.
TEST(MemoryTest, HundredsOfMillionsOfClientsAreRefusedWithTheEstimate) {
  const std::string text =
      "dataset { synthetic {} } partition { natural {} } model { softmax {} } "
      "stop { max_commits: 1 } eval { test_limit: 1000 } algorithm { fedasync {} }";
  for (auto [clients, needed] : {std::pair{"100000000", "18,656 MB"},
                                 std::pair{"1000000000", "184,256 MB"}}) {
    auto s = Parse(text, {absl::StrCat("num_clients=", clients)});
    ASSERT_FALSE(s.ok()) << clients;
    EXPECT_THAT(Msg(s.status()),
                AllOf(HasSubstr(absl::StrCat("limits.memory_budget_mb (default): the run needs "
                                             "about ", needed, " of memory")),
                      HasSubstr(" clients x 184 B = "),
                      HasSubstr("more than the budget of 8,192 MB; raise "
                                "limits.memory_budget_mb to at least")))
        << clients;
  }
  // A million fit: 184 MB of clients, the 1,000 evaluated test rows and the
  // generated clients' cache.
  auto s = Parse(text, {"num_clients=1000000"});
  ASSERT_TRUE(s.ok()) << s.status();
  absl::StatusOr<MemoryEstimate> e = EstimateMemory(*s);
  ASSERT_TRUE(e.ok());
  EXPECT_EQ(e->client_bytes, 184'000'000u);
  EXPECT_EQ(e->data_bytes, 1000u * 244 + 256'000'000u);  // ClientCacheBytes(8192)
  EXPECT_LT(e->total_bytes(), 500'000'000u);
}

// The generated fleet's test set is the union of every client's test split
// unless eval.test_limit cuts it: 10^6 clients x ~45.7 rows x 244 B = 11 GB,
// refused with the field that fixes it. Partitioning anything but naturally
// holds every row.
TEST(MemoryTest, DataHeldInMemoryIsCountedWithTheFieldThatShrinksIt) {
  const std::string text =
      "num_clients: 1000000 dataset { synthetic {} } partition { natural {} } "
      "model { softmax {} } stop { max_commits: 1 } algorithm { fedasync {} }";
  // (Msg of a scenario that parsed is empty, so these also check the refusal.)
  EXPECT_THAT(Msg(Parse(text).status()),
              AllOf(HasSubstr("data: Synthetic test set: 45,742,879 rows x 244 B = 11,161 MB"),
                    HasSubstr("or set eval.test_limit")));
  EXPECT_TRUE(Parse(text, {"eval.test_limit=10000"}).ok());
  // Every row held for an iid partition: 10^5 clients x ~453 rows x 248 B.
  auto s = Parse(text, {"num_clients=100000", "eval.test_limit=10000", "partition={iid{}}"});
  ASSERT_FALSE(s.ok());
  EXPECT_THAT(Msg(s.status()),
              AllOf(HasSubstr("data: Synthetic, every row held to be partitioned: about "
                              "45,292,879 rows x 248 B"),
                    HasSubstr("or use partition natural")));
  // Fixed sizes are exact: 10 clients x (2 - 1) test rows.
  s = Parse(text, {"num_clients=10", "dataset.synthetic.examples_per_client=2"});
  ASSERT_TRUE(s.ok()) << s.status();
  absl::StatusOr<MemoryEstimate> e = EstimateMemory(*s);
  ASSERT_TRUE(e.ok());
  EXPECT_EQ(e->data_bytes, 10u * 244 + 256'000'000u);  // ClientCacheBytes(8192)
}

}  // namespace
}  // namespace fedsim
