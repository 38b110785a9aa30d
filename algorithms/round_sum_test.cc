#include "algorithms/round_sum.h"

#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/fake_fleet.h"
#include "tests/rule_test_util.h"

namespace fedsim {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

ClientUpdate Update(TaskId task, ClientId client, uint64_t examples, std::vector<float> delta) {
  return TestUpdate(task, client, /*staleness=*/0, std::move(delta), examples);
}

TEST(RoundSumTest, ExamplesWeightsOverTheFleetMeanGiveThePapersMean) {
  FakeFleet fleet(4, {0, 0});
  for (ClientId c = 0; c < 4; ++c) fleet.mutable_client(c).num_examples = 10 * (c + 1);  // mean 25
  RoundSum round(/*uniform=*/false, 2);
  round.SetUnitFromFleet(fleet);
  ASSERT_TRUE(round.Add(Update(9, 3, 40, {1, 0})).ok());
  ASSERT_TRUE(round.Add(Update(5, 0, 10, {0, 5})).ok());
  EXPECT_DOUBLE_EQ(round.total_weight(), 50.0 / 25.0);
  std::vector<float> mean(2);
  round.MeanInto(mean);
  EXPECT_THAT(mean, ElementsAre(0.8f, 1.0f));  // (40 {1,0} + 10 {0,5}) / 50
  std::vector<AppliedUpdate> applied = round.Applied(0.5);
  ASSERT_EQ(applied.size(), 2u);
  EXPECT_EQ(applied[0].task_id, 5u);  // task-id order
  EXPECT_DOUBLE_EQ(applied[0].weight, 0.5 * 10 / 50);
  EXPECT_DOUBLE_EQ(applied[1].weight, 0.5 * 40 / 50);
}

TEST(RoundSumTest, ClientsWithoutExamplesMakeNoStep) {
  RoundSum round(/*uniform=*/false, 2);
  ASSERT_TRUE(round.Add(Update(1, 0, 0, {0, 0})).ok());
  EXPECT_EQ(round.total_weight(), 0);
  std::vector<float> model = {1, 2};
  round.AddMeanTo(1.0, model);
  EXPECT_THAT(model, ElementsAre(1, 2));
  EXPECT_EQ(round.Applied(1.0).at(0).weight, 0);
}

TEST(RoundSumTest, SavedRoundLoadsAndRefusesTheOldOneByOneForm) {
  RoundSum round(/*uniform=*/true, 3);
  ASSERT_TRUE(round.Add(Update(1, 0, 5, {1, -2, 3})).ok());
  ASSERT_TRUE(round.Add(Update(2, 1, 5, {0.5f, 0, -1})).ok());
  AlgorithmState state;
  round.Save(&state, "r");
  RoundSum back(/*uniform=*/true, 3);
  ASSERT_TRUE(back.Load(state, "r").ok());
  std::vector<float> a(3), b(3);
  round.MeanInto(a);
  back.MeanInto(b);
  EXPECT_EQ(a, b);
  EXPECT_EQ(back.count(), 2u);
  state.scalars["r.accepted.meta"] = {1};
  absl::Status old = back.Load(state, "r");
  EXPECT_EQ(old.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(old.message(), HasSubstr("one by one"));
  EXPECT_EQ(back.count(), 2u);  // unchanged by the refused load
}

}  // namespace
}  // namespace fedsim
