#include "ml/optimizer.h"

#include <cmath>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "util/rng.h"

namespace fedsim {
namespace {

using ::testing::HasSubstr;

ModelConfig SmallMlp() {
  ModelConfig c;
  c.kind = ModelConfig::Kind::kMlp;
  c.input_channels = 5;
  c.input_height = 1;
  c.input_width = 1;
  c.num_classes = 3;
  c.hidden = {7};
  return c;
}

struct Batch {
  std::vector<float> x;
  std::vector<int32_t> y;
  BatchView view() const { return {x.data(), y.data(), static_cast<int>(y.size())}; }
};

Batch RandomBatch(int n, int dim, int classes, uint64_t seed) {
  Rng rng(seed, "batch");
  Batch b;
  for (int i = 0; i < n * dim; ++i) b.x.push_back(static_cast<float>(rng.Normal()));
  for (int i = 0; i < n; ++i) b.y.push_back(static_cast<int32_t>(rng.UniformInt(classes)));
  return b;
}

TEST(OptimizerTest, SgdIsTheFusedStep) {
  auto model = NewModel(SmallMlp()).value();
  std::vector<float> p1(model->NumParams()), p2;
  model->Init(1, p1);
  p2 = p1;
  const std::vector<float> anchor = p1;
  const Batch b = RandomBatch(4, 5, 3, 2);
  const SgdOptions o{.lr = 0.1, .momentum = 0.9, .weight_decay = 1e-3, .prox_mu = 0.01};
  auto opt = NewSgdOptimizer(o, p1.size()).value();
  Sgd sgd(o, p2.size());
  Rng rng(1, "optimizer");  // SGD on the cross-entropy draws nothing
  for (int step = 0; step < 3; ++step) {
    const float l1 = opt->Step(*model, p1, b.view(), anchor, rng);
    const float l2 = model->ForwardBackwardStep(p2, b.view(), sgd, anchor);
    EXPECT_EQ(l1, l2);
  }
  EXPECT_EQ(p1, p2);
  EXPECT_EQ(opt->passes_per_step(), 1);
}

// SAM against its definition, written out with ForwardBackward and Sgd::Step.
TEST(OptimizerTest, SamFollowsItsDefinition) {
  auto model = NewModel(SmallMlp()).value();
  const size_t n = model->NumParams();
  std::vector<float> w(n);
  model->Init(3, w);
  std::vector<float> expect = w;
  const Batch b = RandomBatch(6, 5, 3, 4);
  const SgdOptions o{.lr = 0.05, .momentum = 0.5};
  const double rho = 0.1;
  auto sam = NewSamOptimizer(SamOptions{.rho = rho}, o, n).value();
  Sgd sgd(o, n);
  Rng rng(1, "optimizer");
  for (int step = 0; step < 3; ++step) {
    std::vector<float> g(n), w_hat(n), g_hat(n);
    const float loss = model->ForwardBackward(expect, b.view(), g);
    double sq = 0;
    for (float v : g) sq += static_cast<double>(v) * v;
    const float scale = static_cast<float>(rho / (std::sqrt(sq) + 1e-12));
    for (size_t i = 0; i < n; ++i) w_hat[i] = expect[i] + scale * g[i];
    // The perturbation really moves the weights by rho.
    double moved = 0;
    for (size_t i = 0; i < n; ++i) moved += std::pow(double{w_hat[i]} - expect[i], 2);
    EXPECT_NEAR(std::sqrt(moved), rho, 1e-4);
    model->ForwardBackward(w_hat, b.view(), g_hat);
    sgd.Step(expect, g_hat);
    EXPECT_EQ(sam->Step(*model, w, b.view(), {}, rng), loss) << step;
  }
  EXPECT_EQ(w, expect);
  EXPECT_EQ(sam->passes_per_step(), 2);
}

TEST(OptimizerTest, SamDiffersFromSgdAndResetRestartsMomentum) {
  auto model = NewModel(SmallMlp()).value();
  std::vector<float> a(model->NumParams());
  model->Init(5, a);
  std::vector<float> b = a, c = a;
  const Batch batch = RandomBatch(8, 5, 3, 6);
  const SgdOptions o{.lr = 0.1, .momentum = 0.9};
  auto sgd = NewSgdOptimizer(o, a.size()).value();
  auto sam = NewSamOptimizer(SamOptions{.rho = 0.5}, o, a.size()).value();
  Rng rng(1, "optimizer");
  for (int i = 0; i < 2; ++i) {
    sgd->Step(*model, a, batch.view(), {}, rng);
    sam->Step(*model, b, batch.view(), {}, rng);
  }
  EXPECT_NE(a, b);
  // After Reset, the SAM optimizer repeats its first two steps exactly.
  sam->Reset();
  std::vector<float> b2 = c;
  for (int i = 0; i < 2; ++i) sam->Step(*model, b2, batch.view(), {}, rng);
  EXPECT_EQ(b, b2);
}

// Twice the mean cross-entropy; counts its calls and the streams it sees.
class DoubledLoss final : public Objective {
 public:
  std::string Name() const override { return "doubled"; }
  float Gradient(Model& model, std::span<const float> params, const BatchView& batch, Rng& rng,
                 std::span<float> grad) override {
    ++calls;
    keys.push_back(rng.key());
    const float loss = model.ForwardBackward(params, batch, grad);
    for (float& g : grad) g *= 2;
    return 2 * loss;
  }
  int passes() const override { return 3; }
  int calls = 0;
  std::vector<uint64_t> keys;
};

// SGD and SAM step on the objective's gradient, hand it the step's stream
// and count its passes.
TEST(OptimizerTest, ObjectiveReplacesTheCrossEntropy) {
  auto model = NewModel(SmallMlp()).value();
  std::vector<float> w(model->NumParams());
  model->Init(11, w);
  const Batch b = RandomBatch(5, 5, 3, 12);
  const SgdOptions o{.lr = 0.05};
  // SGD on 2 L with lr is SGD on L with 2 lr.
  auto owned = std::make_unique<DoubledLoss>();
  DoubledLoss* doubled = owned.get();
  auto sgd = NewSgdOptimizer(o, w.size(), std::move(owned)).value();
  auto reference = NewSgdOptimizer(SgdOptions{.lr = 0.1}, w.size()).value();
  EXPECT_EQ(sgd->passes_per_step(), 3);
  EXPECT_EQ(sgd->Name(), "sgd(lr=0.05) on doubled");
  std::vector<float> a = w, c = w;
  Rng rng(3, "optimizer", 4);
  Rng unused(3, "optimizer", 5);
  const float loss = sgd->Step(*model, a, b.view(), {}, rng);
  const float want = reference->Step(*model, c, b.view(), {}, unused);
  EXPECT_EQ(loss, 2 * want);
  for (size_t i = 0; i < a.size(); ++i) EXPECT_NEAR(a[i], c[i], 1e-7) << i;
  EXPECT_EQ(doubled->calls, 1);
  EXPECT_EQ(doubled->keys, std::vector<uint64_t>{rng.key()});
  EXPECT_EQ(unused.draws(), 0u);  // SGD on the cross-entropy draws nothing

  auto sam_owned = std::make_unique<DoubledLoss>();
  DoubledLoss* sam_doubled = sam_owned.get();
  auto sam = NewSamOptimizer(SamOptions{.rho = 0.1}, o, w.size(), std::move(sam_owned)).value();
  EXPECT_EQ(sam->passes_per_step(), 6);
  sam->Step(*model, a, b.view(), {}, rng);
  EXPECT_EQ(sam_doubled->calls, 2);  // at w and at w_hat, with the step's stream
  EXPECT_EQ(sam_doubled->keys, std::vector<uint64_t>(2, rng.key()));
}

TEST(OptimizerTest, RejectsBadSettings) {
  EXPECT_THAT(NewSgdOptimizer(SgdOptions{.momentum = 1.0}, 4).status().message(),
              HasSubstr("momentum"));
  EXPECT_THAT(NewSgdOptimizer(SgdOptions{.lr = -1}, 4).status().message(), HasSubstr("lr"));
  EXPECT_THAT(NewSamOptimizer(SamOptions{.rho = 0}, SgdOptions{}, 4).status().message(),
              HasSubstr("rho"));
  EXPECT_THAT(NewSamOptimizer(SamOptions{.rho = NAN}, SgdOptions{}, 4).status().message(),
              HasSubstr("rho"));
}

}  // namespace
}  // namespace fedsim
