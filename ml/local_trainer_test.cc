#include "ml/local_trainer.h"

#include <algorithm>
#include <cmath>
#include <memory>
#include <string>
#include <numeric>
#include <vector>

#include "gtest/gtest.h"
#include "ml/sgd.h"
#include "util/rng.h"

namespace fedsim {
namespace {

// Gaussian blobs around well-separated class means: linearly separable for
// all practical purposes.
Dataset Blobs(int n, int dim, int classes, uint64_t seed, double noise) {
  Rng means_rng(1234, "blob_means");
  std::vector<float> means(static_cast<size_t>(classes) * dim);
  for (float& m : means) m = static_cast<float>(means_rng.Normal(0.0, 1.0));
  Rng rng(seed, "blobs");
  std::vector<float> x(static_cast<size_t>(n) * dim);
  std::vector<int32_t> y(n);
  for (int i = 0; i < n; ++i) {
    y[i] = static_cast<int32_t>(rng.UniformInt(classes));
    for (int j = 0; j < dim; ++j) {
      x[static_cast<size_t>(i) * dim + j] =
          means[static_cast<size_t>(y[i]) * dim + j] + static_cast<float>(rng.Normal(0.0, noise));
    }
  }
  return Dataset::FromF32(ExampleShape{dim, 1, 1}, classes, std::move(x), std::move(y));
}

// The schedule and SGD settings of one task, as the tests below write them.
struct LocalTrainingConfig {
  uint32_t epochs = 1;
  uint32_t steps = 0;
  uint32_t batch_size = 10;
  double lr = 0.1;
  double momentum = 0.0;
  double weight_decay = 0.0;
  double prox_mu = 0.0;
};

// TrainLocal with an SGD optimizer built from `c` and no batch transform.
absl::StatusOr<LocalTrainingResult> TrainLocal(Model& model, std::span<const float> base,
                                               const Dataset& data,
                                               std::span<const uint32_t> indices,
                                               const LocalTrainingConfig& c, uint64_t seed) {
  absl::StatusOr<std::unique_ptr<Optimizer>> opt = NewSgdOptimizer(
      SgdOptions{.lr = c.lr, .momentum = c.momentum, .weight_decay = c.weight_decay,
                 .prox_mu = c.prox_mu},
      model.NumParams());
  if (!opt.ok()) return opt.status();
  return fedsim::TrainLocal(model, base, data, indices,
                            LocalSchedule{.epochs = c.epochs, .steps = c.steps,
                                          .batch_size = c.batch_size},
                            **opt, nullptr, seed);
}

ModelConfig SoftmaxConfig(int dim, int classes) {
  ModelConfig c;
  c.kind = ModelConfig::Kind::kSoftmax;
  c.input_channels = dim;
  c.input_height = 1;
  c.input_width = 1;
  c.num_classes = classes;
  return c;
}

std::vector<uint32_t> Iota(size_t n) {
  std::vector<uint32_t> v(n);
  std::iota(v.begin(), v.end(), 0u);
  return v;
}

TEST(TrainLocalTest, DeterministicPerSeed) {
  const Dataset data = Blobs(200, 12, 4, 1, 1.0);
  ModelConfig cfg;
  cfg.input_channels = 12;
  cfg.input_height = 1;
  cfg.input_width = 1;
  cfg.hidden = {16};
  cfg.num_classes = 4;
  auto model = NewModel(cfg).value();
  std::vector<float> base(model->NumParams());
  model->Init(1, base);
  const std::vector<uint32_t> idx = {3, 17, 42, 99, 100, 150, 151, 152, 7, 8, 9, 10, 11};
  LocalTrainingConfig tc{.epochs = 2, .batch_size = 4, .lr = 0.05, .momentum = 0.9,
                         .weight_decay = 1e-3, .prox_mu = 0.01};
  auto a = TrainLocal(*model, base, data, idx, tc, 77).value();
  auto b = TrainLocal(*model, base, data, idx, tc, 77).value();
  auto other_model = NewModel(cfg).value();
  auto c = TrainLocal(*other_model, base, data, idx, tc, 77).value();
  auto d = TrainLocal(*model, base, data, idx, tc, 78).value();
  EXPECT_EQ(a.delta, b.delta);  // bit-identical; also shows momentum is reset per call
  EXPECT_EQ(a.delta, c.delta);
  EXPECT_EQ(a.mean_loss, b.mean_loss);
  EXPECT_NE(a.delta, d.delta);
  EXPECT_EQ(a.steps, 2u * 4);  // ceil(13 / 4) = 4 batches per epoch
  EXPECT_EQ(a.examples_processed, 2u * 13);
  ASSERT_EQ(a.delta.size(), base.size());
  double norm = 0;
  for (float v : a.delta) norm += v * v;
  EXPECT_GT(norm, 0.0);
}

TEST(TrainLocalTest, StepsOverrideEpochs) {
  const Dataset data = Blobs(50, 6, 3, 2, 1.0);
  auto model = NewModel(SoftmaxConfig(6, 3)).value();
  std::vector<float> base(model->NumParams());
  model->Init(2, base);
  const std::vector<uint32_t> idx = Iota(10);
  LocalTrainingConfig tc{.epochs = 1, .steps = 7, .batch_size = 4};
  auto r = TrainLocal(*model, base, data, idx, tc, 1).value();
  EXPECT_EQ(r.steps, 7u);
  // Epoch of 10 rows = batches of 4, 4, 2; 7 steps = 4+4+2 + 4+4+2 + 4.
  EXPECT_EQ(r.examples_processed, 4u + 4 + 2 + 4 + 4 + 2 + 4);
}

TEST(TrainLocalTest, ZeroLearningRateGivesZeroDelta) {
  const Dataset data = Blobs(20, 6, 3, 3, 1.0);
  auto model = NewModel(SoftmaxConfig(6, 3)).value();
  std::vector<float> base(model->NumParams());
  model->Init(3, base);
  auto r = TrainLocal(*model, base, data, Iota(20), LocalTrainingConfig{.lr = 0.0}, 1).value();
  for (float v : r.delta) EXPECT_EQ(v, 0.0f);
  EXPECT_GT(r.mean_loss, 0.0);
}

TEST(TrainLocalTest, RejectsBadInputs) {
  const Dataset data = Blobs(20, 6, 3, 3, 1.0);
  auto model = NewModel(SoftmaxConfig(6, 3)).value();
  std::vector<float> base(model->NumParams());
  const std::vector<uint32_t> idx = Iota(5);
  const LocalTrainingConfig tc;
  std::vector<float> short_base(3);
  EXPECT_EQ(TrainLocal(*model, short_base, data, idx, tc, 1).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(TrainLocal(*model, base, data, {}, tc, 1).status().code(),
            absl::StatusCode::kInvalidArgument);
  const std::vector<uint32_t> out_of_range = {1, 20};
  EXPECT_EQ(TrainLocal(*model, base, data, out_of_range, tc, 1).status().code(),
            absl::StatusCode::kInvalidArgument);
  auto wide = NewModel(SoftmaxConfig(7, 3)).value();
  std::vector<float> wide_base(wide->NumParams());
  EXPECT_EQ(TrainLocal(*wide, wide_base, data, idx, tc, 1).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(TrainLocal(*model, base, data, idx, LocalTrainingConfig{.batch_size = 0}, 1)
                .status()
                .code(),
            absl::StatusCode::kInvalidArgument);
}

// A transform that replaces every batch by one fixed example and records
// what it was given.
class FixedBatchTransform final : public BatchTransform {
 public:
  FixedBatchTransform(std::vector<float> x, int32_t y) : x_(std::move(x)), y_(y) {}
  std::string Name() const override { return "fixed"; }
  BatchView Apply(Model& model, std::span<const float> params, const BatchView& in,
                  Rng& rng) override {
    (void)model;
    (void)params;
    seen_rows_ += in.n;
    keys_.push_back(rng.NextU64());
    return BatchView{x_.data(), &y_, 1};
  }
  int passes_per_step() const override { return 0; }
  int seen_rows_ = 0;
  std::vector<uint64_t> keys_;

 private:
  std::vector<float> x_;
  int32_t y_;
};

TEST(TrainLocalTest, TransformFeedsTheOptimizerEveryStep) {
  const Dataset data = Blobs(10, 6, 3, 3, 1.0);
  auto model = NewModel(SoftmaxConfig(6, 3)).value();
  std::vector<float> base(model->NumParams());
  model->Init(3, base);
  const std::vector<float> fixed_x = {1, 0, -1, 2, 0.5f, 0};
  FixedBatchTransform transform(fixed_x, 2);
  const SgdOptions o{.lr = 0.1};
  auto opt = NewSgdOptimizer(o, base.size()).value();
  const LocalSchedule schedule{.epochs = 2, .batch_size = 4};  // 3 batches per epoch
  auto r = fedsim::TrainLocal(*model, base, data, Iota(10), schedule, *opt, &transform, 9).value();
  EXPECT_EQ(r.steps, 6u);
  EXPECT_EQ(transform.seen_rows_, 20);  // every row of both epochs went through it
  ASSERT_EQ(transform.keys_.size(), 6u);
  // A stream per step: no two steps see the same randomness.
  std::vector<uint64_t> keys = transform.keys_;
  std::sort(keys.begin(), keys.end());
  EXPECT_EQ(std::adjacent_find(keys.begin(), keys.end()), keys.end());
  // The optimizer trained on the transformed batch only: six SGD steps on the
  // fixed example give the same model.
  std::vector<float> expect = base;
  Sgd sgd(o, base.size());
  std::vector<float> g(base.size());
  int32_t label = 2;
  for (int i = 0; i < 6; ++i) {
    model->ForwardBackward(expect, BatchView{fixed_x.data(), &label, 1}, g);
    sgd.Step(expect, g);
  }
  for (size_t i = 0; i < base.size(); ++i) EXPECT_EQ(r.delta[i], expect[i] - base[i]) << i;
}

TEST(LocalScheduleTest, StepsAndExamples) {
  EXPECT_EQ((LocalSchedule{.epochs = 2, .batch_size = 4}).StepsFor(10), 6u);
  EXPECT_EQ((LocalSchedule{.epochs = 2, .batch_size = 4}).ExamplesFor(10), 20u);
  EXPECT_EQ((LocalSchedule{.steps = 5, .batch_size = 32}).StepsFor(10), 5u);
  EXPECT_EQ((LocalSchedule{.steps = 5, .batch_size = 32}).ExamplesFor(10), 160u);
  EXPECT_EQ((LocalSchedule{.epochs = 1, .batch_size = 64}).StepsFor(10), 1u);
}

// The training smoke test: softmax regression on generated, separable data
// learns far beyond chance (10%).
TEST(TrainLocalTest, SoftmaxRegressionLearnsSeparableData) {
  const int dim = 20, classes = 10;
  const Dataset train = Blobs(2000, dim, classes, 10, 0.7);
  const Dataset test = Blobs(1000, dim, classes, 11, 0.7);
  auto model = NewModel(SoftmaxConfig(dim, classes)).value();
  std::vector<float> params(model->NumParams());
  model->Init(5, params);

  std::vector<float> x(test.size() * dim);
  std::vector<int32_t> y(test.size());
  test.GatherRange(0, test.size(), x.data(), y.data());
  const BatchView test_view{x.data(), y.data(), static_cast<int>(test.size())};
  const EvalResult before = model->Evaluate(params, test_view);

  LocalTrainingConfig tc{.epochs = 3, .batch_size = 20, .lr = 0.1, .momentum = 0.9};
  auto r = TrainLocal(*model, params, train, Iota(train.size()), tc, 3).value();
  for (size_t i = 0; i < params.size(); ++i) params[i] += r.delta[i];
  const EvalResult after = model->Evaluate(params, test_view);
  const double acc = static_cast<double>(after.correct) / after.count;
  EXPECT_GT(acc, 0.9) << "before: " << static_cast<double>(before.correct) / before.count;
  EXPECT_LT(after.loss_sum, 0.5 * before.loss_sum);
}

}  // namespace
}  // namespace fedsim
