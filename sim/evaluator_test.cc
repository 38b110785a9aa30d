#include "sim/evaluator.h"

#include <algorithm>
#include <memory>
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

}  // namespace
}  // namespace fedsim
