#include "algorithms/round_sum.h"

#include <memory>
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

// A worker's pre-aggregated sum of tasks 1 and 2 (with RoundSum's own
// weights), given to the result of `carrier`.
ClientUpdate FoldedUpdate(const RoundSum& round, TaskId carrier, ClientId client, uint64_t examples,
                          const std::vector<ClientUpdate>& parts) {
  auto folded = std::make_shared<FoldedSum>();
  folded->id = 1;
  folded->group = 1;
  folded->sum = ExactSum(parts.front().delta.size());
  for (const ClientUpdate& u : parts) {
    EXPECT_TRUE(folded->sum.Add(round.WeightOf(u.num_examples), u.delta).ok());
    folded->tasks.push_back(u.task_id);
  }
  ClientUpdate u = Update(carrier, client, examples, {});
  u.folded = std::move(folded);
  return u;
}

TEST(RoundSumTest, APreAggregatedSumGivesTheSameBitsAsItsUpdatesOneByOne) {
  FakeFleet fleet(3, {0, 0});
  for (ClientId c = 0; c < 3; ++c) fleet.mutable_client(c).num_examples = 7 + 11 * c;
  const std::vector<ClientUpdate> updates = {Update(1, 0, 7, {0.1f, -3.7f, 1e-3f}),
                                             Update(2, 1, 18, {2.3f, 0.7f, -0.9f}),
                                             Update(3, 2, 29, {-1.1f, 5.5f, 0.3f})};
  RoundSum plain(/*uniform=*/false, 3);
  plain.SetUnitFromFleet(fleet);
  for (const ClientUpdate& u : updates) ASSERT_TRUE(plain.Add(u).ok());

  RoundSum folded(/*uniform=*/false, 3);
  folded.SetUnitFromFleet(fleet);
  // Task 3 alone, then tasks 2 and 1 from one worker's sum: 2 merges it,
  // 1 only counts.
  ASSERT_TRUE(folded.Add(updates[2]).ok());
  ASSERT_TRUE(folded.Add(FoldedUpdate(folded, 2, 1, 18, {updates[0], updates[1]})).ok());
  EXPECT_EQ(folded.pending_folds(), 1u);
  ClientUpdate one = FoldedUpdate(folded, 1, 0, 7, {updates[0], updates[1]});
  ASSERT_TRUE(folded.Add(one).ok());
  EXPECT_EQ(folded.pending_folds(), 0u);

  std::vector<float> a(3), b(3);
  plain.MeanInto(a);
  folded.MeanInto(b);
  EXPECT_EQ(a, b);
  EXPECT_DOUBLE_EQ(plain.total_weight(), folded.total_weight());
  ASSERT_EQ(folded.Applied(1.0).size(), 3u);
  EXPECT_EQ(folded.Applied(1.0)[0].weight, plain.Applied(1.0)[0].weight);
}

// A sum read in place (FoldedSum::borrowed: a worker's shared-memory slot)
// gives the round the bits of the same sum held by the FoldedSum, as the
// round's first sum (copied) and as a later one (merged).
TEST(RoundSumTest, ASumHeldElsewhereGivesTheSameBitsAsOneHeldByItsFoldedSum) {
  const std::vector<ClientUpdate> updates = {
      Update(1, 0, 5, {0.1f, -3.7f, 1e-3f}), Update(2, 1, 5, {2.3f, 0.7f, -0.9f}),
      Update(3, 2, 5, {-1.1f, 5.5f, 0.3f}), Update(4, 3, 5, {4.25f, -0.5f, 7.0f})};
  std::vector<std::vector<int64_t>> outside;  // the "slots"
  auto borrowed = [&](ClientUpdate u) {
    auto copy = std::make_shared<FoldedSum>(*u.folded);
    outside.push_back(std::move(copy->sum).TakeValues());
    copy->sum = ExactSum();
    copy->borrowed = outside.back();
    u.folded = std::move(copy);
    return u;
  };
  outside.reserve(4);
  for (bool elsewhere : {false, true}) {
    RoundSum round(/*uniform=*/true, 3);
    ClientUpdate first = FoldedUpdate(round, 1, 0, 5, {updates[0], updates[1]});
    ClientUpdate second = FoldedUpdate(round, 3, 2, 5, {updates[2], updates[3]});
    if (elsewhere) {
      first = borrowed(first);
      second = borrowed(second);
      EXPECT_TRUE(first.folded->sum.empty());
      EXPECT_EQ(first.folded->values().data(), outside[0].data());
    }
    ASSERT_TRUE(round.Add(first).ok());
    ASSERT_TRUE(round.Add(updates[1]).ok());
    ASSERT_TRUE(round.Add(second).ok());
    ASSERT_TRUE(round.Add(updates[3]).ok());
    EXPECT_EQ(round.pending_folds(), 0u);
    std::vector<float> mean(3);
    round.MeanInto(mean);
    RoundSum plain(/*uniform=*/true, 3);
    for (const ClientUpdate& u : updates) ASSERT_TRUE(plain.Add(u).ok());
    std::vector<float> want(3);
    plain.MeanInto(want);
    EXPECT_EQ(mean, want) << (elsewhere ? "held elsewhere" : "held by the FoldedSum");
  }
}

TEST(RoundSumTest, ANewRoundStartsFromNothingWhateverItsFirstUpdateIs) {
  // Clear keeps the sum's memory without zeroing it; the next round's first
  // update, plain or pre-aggregated, overwrites it.
  const std::vector<ClientUpdate> old = {Update(1, 0, 5, {9, -9}), Update(2, 1, 5, {7, 7})};
  const std::vector<ClientUpdate> updates = {Update(3, 0, 5, {1, 2}), Update(4, 1, 5, {3, -4}),
                                             Update(5, 2, 5, {0.5f, 0.25f})};
  RoundSum fresh(/*uniform=*/true, 2);
  for (const ClientUpdate& u : updates) ASSERT_TRUE(fresh.Add(u).ok());
  std::vector<float> want(2);
  fresh.MeanInto(want);
  for (bool folded_first : {false, true}) {
    RoundSum round(/*uniform=*/true, 2);
    for (const ClientUpdate& u : old) ASSERT_TRUE(round.Add(u).ok());
    round.Clear();
    EXPECT_TRUE(round.empty());
    if (folded_first) {
      ASSERT_TRUE(round.Add(FoldedUpdate(round, 3, 0, 5, {updates[0], updates[1]})).ok());
      ASSERT_TRUE(round.Add(updates[1]).ok());  // its share of the sum: only counted
    } else {
      ASSERT_TRUE(round.Add(updates[0]).ok());
      ASSERT_TRUE(round.Add(updates[1]).ok());
    }
    ASSERT_TRUE(round.Add(updates[2]).ok());
    std::vector<float> mean(2);
    round.MeanInto(mean);
    EXPECT_EQ(mean, want) << folded_first;
    EXPECT_EQ(round.count(), 3u);
  }
}

TEST(RoundSumTest, ACheckpointBetweenASumsTasksKeepsThemCountedOnce) {
  const std::vector<ClientUpdate> updates = {Update(1, 0, 5, {1, 2}), Update(2, 1, 5, {3, -4})};
  RoundSum round(/*uniform=*/true, 2);
  ASSERT_TRUE(round.Add(FoldedUpdate(round, 1, 0, 5, updates)).ok());
  AlgorithmState state;
  round.Save(&state, "r");
  RoundSum back(/*uniform=*/true, 2);
  ASSERT_TRUE(back.Load(state, "r").ok());
  EXPECT_EQ(back.pending_folds(), 1u);
  // After the resume task 2 is trained again and comes with its delta: it
  // is in the sum already, so only its weight counts.
  ASSERT_TRUE(back.Add(updates[1]).ok());
  EXPECT_EQ(back.pending_folds(), 0u);
  std::vector<float> mean(2);
  back.MeanInto(mean);
  EXPECT_THAT(mean, ElementsAre(2.0f, -1.0f));
}

TEST(RoundSumTest, APreAggregatedSumMustNameItsTaskAndNoTaskAddedAlready) {
  const std::vector<ClientUpdate> updates = {Update(1, 0, 5, {1, 2}), Update(2, 1, 5, {3, -4})};
  RoundSum round(/*uniform=*/true, 2);
  EXPECT_THAT(round.Add(FoldedUpdate(round, 3, 0, 5, updates)).message(),
              HasSubstr("does not name this task"));
  ASSERT_TRUE(round.Add(updates[0]).ok());
  absl::Status overlap = round.Add(FoldedUpdate(round, 2, 1, 5, updates));
  EXPECT_EQ(overlap.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(overlap.message(), HasSubstr("added already"));
  EXPECT_EQ(round.count(), 1u);
  RoundSum sized(/*uniform=*/true, 3);
  EXPECT_EQ(sized.Add(FoldedUpdate(sized, 1, 0, 5, updates)).code(),
            absl::StatusCode::kInvalidArgument);
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
