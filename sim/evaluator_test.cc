#include "sim/evaluator.h"

#include <algorithm>
#include <memory>
#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "util/rng.h"

namespace fedsim {
namespace {

constexpr int kDim = 20;
constexpr int kClasses = 10;

Dataset RandomTestSet(size_t rows) {
  Rng rng(7, "evaluator_test");
  std::vector<float> x(rows * kDim);
  std::vector<int32_t> y(rows);
  for (float& v : x) v = static_cast<float>(rng.Uniform(-0.5, 0.5));
  for (int32_t& l : y) l = static_cast<int32_t>(rng.UniformInt(kClasses));
  return Dataset::FromF32(ExampleShape{kDim, 1, 1}, kClasses, std::move(x), std::move(y));
}

ModelConfig Mlp() {
  ModelConfig c;
  c.input_channels = kDim;
  c.input_height = 1;
  c.input_width = 1;
  c.num_classes = kClasses;
  c.hidden = {16};
  return c;
}

// The figures do not depend on the thread count: every chunk's sums land in
// their own slot and are added in chunk order.
TEST(EvaluatorTest, BitIdenticalForAnyThreadCount) {
  const Dataset test = RandomTestSet(1730);  // 4 chunks of 500, the last one short
  auto model = NewModel(Mlp());
  ASSERT_TRUE(model.ok()) << model.status();
  std::vector<float> params((*model)->NumParams());
  (*model)->Init(3, params);

  // By hand: chunk by chunk, in order, on this thread.
  EvalResult want;
  std::vector<float> x;
  std::vector<int32_t> y;
  for (size_t begin = 0; begin < test.size(); begin += 500) {
    const size_t end = std::min(test.size(), begin + 500);
    x.resize((end - begin) * kDim);
    y.resize(end - begin);
    test.GatherRange(begin, end, x.data(), y.data());
    EvalResult part =
        (*model)->Evaluate(params, BatchView{x.data(), y.data(), static_cast<int>(end - begin)});
    want.loss_sum += part.loss_sum;
    want.correct += part.correct;
    want.count += part.count;
  }
  ASSERT_EQ(want.count, 1730);

  for (int threads : {1, 2, 3, 8}) {
    auto evaluator = Evaluator::Create(Mlp(), &test, 0, threads);
    ASSERT_TRUE(evaluator.ok()) << evaluator.status();
    for (int repeat = 0; repeat < 3; ++repeat) {
      const EvalResult got = (*evaluator)->Sums(params);
      EXPECT_EQ(got.loss_sum, want.loss_sum) << threads << " threads";
      EXPECT_EQ(got.correct, want.correct) << threads << " threads";
      EXPECT_EQ(got.count, want.count) << threads << " threads";
      // The named figures are the sums' means.
      MetricValues v = (*evaluator)->Evaluate(params);
      EXPECT_EQ(v["test_loss"], want.loss_sum / static_cast<double>(want.count));
      EXPECT_EQ(v["test_accuracy"], static_cast<double>(want.correct) / want.count);
      EXPECT_EQ((*evaluator)->Accuracy(params), v["test_accuracy"]);
    }
  }
  auto limited = Evaluator::Create(Mlp(), &test, 600, 2);
  ASSERT_TRUE(limited.ok());
  EXPECT_EQ((*limited)->Sums(params).count, 600);
}

// Robust accuracy on the fixed subset: the counts of one EvaluateRobust call
// on RobustEvalSubset (what `fedsim train` computes), for any thread count.
TEST(EvaluatorTest, RobustFiguresAreOneCallsForAnyThreadCount) {
  const Dataset test = RandomTestSet(1730);
  auto model = NewModel(Mlp());
  ASSERT_TRUE(model.ok()) << model.status();
  std::vector<float> params((*model)->NumParams());
  (*model)->Init(3, params);
  RobustEvalPlan plan;
  plan.options.attack = AttackOptions{.eps = 0.05, .step_size = 0.01, .steps = 3,
                                      .clip_min = -1, .clip_max = 1};
  plan.options.fgsm = true;
  plan.options.chunk_rows = 64;  // 7 chunks of the 400 rows, the last one short
  plan.examples = 400;
  plan.seed = 11;
  // By hand: the subset of the first 1500 rows (test_limit), one call.
  const std::vector<uint32_t> rows = RobustEvalSubset(1500, 400, 11);
  ASSERT_EQ(rows.size(), 400u);
  EXPECT_LT(rows.back(), 1500u);
  auto want = EvaluateRobust(**model, params, test, rows, plan.options, 11);
  ASSERT_TRUE(want.ok()) << want.status();
  ASSERT_GT(want->clean_correct, want->robust_correct);  // the attack bites

  for (int threads : {1, 2, 3, 8}) {
    auto evaluator = Evaluator::Create(Mlp(), &test, 1500, threads, plan);
    ASSERT_TRUE(evaluator.ok()) << evaluator.status();
    EXPECT_EQ((*evaluator)->ExtraMetricNames(),
              (std::vector<std::string>{"robust_accuracy", "fgsm_accuracy"}));
    const absl::StatusOr<RobustEvalResult> got = (*evaluator)->RobustSums(params);
    ASSERT_TRUE(got.ok()) << got.status();
    EXPECT_EQ(got->count, 400) << threads;
    EXPECT_EQ(got->clean_correct, want->clean_correct) << threads;
    EXPECT_EQ(got->robust_correct, want->robust_correct) << threads;
    EXPECT_EQ(got->fgsm_correct, want->fgsm_correct) << threads;
    MetricValues v = (*evaluator)->Evaluate(params);
    EXPECT_EQ(v["robust_accuracy"], want->robust_accuracy()) << threads;
    EXPECT_EQ(v["fgsm_accuracy"], want->fgsm_accuracy()) << threads;
    EXPECT_EQ(v["test_accuracy"], (*evaluator)->Accuracy(params));
  }

  // More examples than rows: every row, and the plan says so.
  plan.options.fgsm = false;
  plan.examples = 5000;
  auto all = Evaluator::Create(Mlp(), &test, 0, 2, plan);
  ASSERT_TRUE(all.ok());
  EXPECT_EQ((*all)->ExtraMetricNames(), std::vector<std::string>{"robust_accuracy"});
  EXPECT_EQ((*all)->robust_plan()->examples, 1730u);
  EXPECT_EQ((*all)->Evaluate(params).count("fgsm_accuracy"), 0u);
  // Without a plan: no extra figures.
  auto none = Evaluator::Create(Mlp(), &test, 0, 2);
  ASSERT_TRUE(none.ok());
  EXPECT_TRUE((*none)->ExtraMetricNames().empty());
  EXPECT_EQ((*none)->Evaluate(params).size(), 2u);
  // A bad plan is refused up front.
  plan.options.attack.steps = 0;
  EXPECT_FALSE(Evaluator::Create(Mlp(), &test, 0, 2, plan).ok());
}

}  // namespace
}  // namespace fedsim
