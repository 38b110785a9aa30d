#include "ml/model.h"

#include <cmath>
#include <memory>
#include <vector>

#include "gtest/gtest.h"
#include "ml/grad_check_test_util.h"
#include "ml/numeric.h"
#include "ml/sgd.h"
#include "util/rng.h"

namespace fedsim {
namespace {

using testing::CheckGradient;
using testing::GradCheckOptions;

std::unique_ptr<Model> MustNew(const ModelConfig& config) {
  auto m = NewModel(config);
  EXPECT_TRUE(m.ok()) << m.status();
  return m.ok() ? std::move(m).value() : nullptr;
}

ModelConfig Softmax(int c, int h, int w, int k) {
  ModelConfig cfg;
  cfg.kind = ModelConfig::Kind::kSoftmax;
  cfg.input_channels = c;
  cfg.input_height = h;
  cfg.input_width = w;
  cfg.num_classes = k;
  return cfg;
}

ModelConfig Mlp(int dim, std::vector<int> hidden, int k) {
  ModelConfig cfg;
  cfg.kind = ModelConfig::Kind::kMlp;
  cfg.input_channels = dim;
  cfg.input_height = 1;
  cfg.input_width = 1;
  cfg.hidden = std::move(hidden);
  cfg.num_classes = k;
  return cfg;
}

ModelConfig Cnn(int c, int h, int w, int conv1, int conv2, int kernel, int fc, int k) {
  ModelConfig cfg;
  cfg.kind = ModelConfig::Kind::kCnn;
  cfg.input_channels = c;
  cfg.input_height = h;
  cfg.input_width = w;
  cfg.conv1 = conv1;
  cfg.conv2 = conv2;
  cfg.kernel = kernel;
  cfg.fc = fc;
  cfg.num_classes = k;
  return cfg;
}

struct Batch {
  std::vector<float> x;
  std::vector<int32_t> y;
  BatchView view() const { return {x.data(), y.data(), static_cast<int>(y.size())}; }
};

Batch RandomBatch(const ModelConfig& cfg, int n, uint64_t seed) {
  Rng rng(seed, "test_batch");
  Batch b;
  b.x.resize(static_cast<size_t>(n) * cfg.input_dim());
  for (float& v : b.x) v = static_cast<float>(rng.Uniform(0.0, 1.0));
  for (int i = 0; i < n; ++i) b.y.push_back(static_cast<int32_t>(rng.UniformInt(cfg.num_classes)));
  return b;
}

TEST(ModelConfigTest, ToString) {
  ModelConfig mlp;
  EXPECT_EQ(mlp.ToString(), "mlp(784-200-200-10)");
  EXPECT_EQ(Softmax(1, 28, 28, 10).ToString(), "softmax(784-10)");
  ModelConfig cnn;
  cnn.kind = ModelConfig::Kind::kCnn;
  EXPECT_EQ(cnn.ToString(), "cnn(1x28x28-conv5x5x32-pool-conv5x5x64-pool-fc512-10)");
}

TEST(ModelTest, DefaultParameterCounts) {
  ModelConfig mlp;
  EXPECT_EQ(MustNew(mlp)->NumParams(), 784u * 200 + 200 + 200 * 200 + 200 + 200 * 10 + 10);
  EXPECT_EQ(MustNew(Softmax(1, 28, 28, 10))->NumParams(), 7850u);
  ModelConfig cnn;
  cnn.kind = ModelConfig::Kind::kCnn;
  // McMahan et al.'s CNN has 1,663,370 parameters.
  EXPECT_EQ(MustNew(cnn)->NumParams(), 1663370u);
}

TEST(ModelTest, RejectsImpossibleConfigs) {
  auto expect_bad = [](ModelConfig cfg, const std::string& field) {
    auto m = NewModel(cfg);
    ASSERT_FALSE(m.ok()) << cfg.ToString();
    EXPECT_EQ(m.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_NE(std::string(m.status().message()).find(field), std::string::npos) << m.status();
  };
  ModelConfig c;
  c.num_classes = 0;
  expect_bad(c, "num_classes");
  c = ModelConfig();
  c.input_height = 0;
  expect_bad(c, "input_height");
  c = ModelConfig();
  c.hidden = {200, 0};
  expect_bad(c, "hidden[1]");
  c = Cnn(1, 28, 28, 32, 64, 5, 512, 10);
  c.conv2 = -1;
  expect_bad(c, "conv2");
  expect_bad(Cnn(1, 8, 8, 2, 2, 5, 4, 3), "kernel");
  expect_bad(Cnn(1, 3, 8, 2, 2, 1, 4, 3), "input_height");
}

TEST(ModelTest, InitIsSeededAndDeterministic) {
  auto m = MustNew(ModelConfig());
  std::vector<float> a(m->NumParams()), b(m->NumParams()), c(m->NumParams());
  m->Init(1, a);
  m->Init(1, b);
  m->Init(2, c);
  EXPECT_EQ(a, b);
  EXPECT_NE(a, c);
  // First layer is followed by a ReLU: Kaiming bound sqrt(6 / 784).
  double max_abs = 0;
  for (size_t i = 0; i < 784 * 200; ++i) max_abs = std::max<double>(max_abs, std::abs(a[i]));
  EXPECT_LE(max_abs, std::sqrt(6.0 / 784));
  EXPECT_GT(max_abs, 0.95 * std::sqrt(6.0 / 784));
}

struct GradCase {
  std::string name;
  ModelConfig config;
  int n;
};

class ModelGradientTest : public ::testing::TestWithParam<GradCase> {};

TEST_P(ModelGradientTest, ParamsAndInput) {
  const GradCase& c = GetParam();
  auto model = MustNew(c.config);
  ASSERT_NE(model, nullptr);
  std::vector<float> params(model->NumParams());
  model->Init(7, params);
  // Small non-zero biases so that their gradients are exercised in context.
  Rng noise(8, "bias_noise");
  for (float& p : params) p += static_cast<float>(noise.Uniform(-0.05, 0.05));
  Batch batch = RandomBatch(c.config, c.n, 9);
  std::vector<float> grad(params.size(), 1e9f);
  std::vector<float> dinput(batch.x.size(), 1e9f);
  const float loss = model->ForwardBackward(params, batch.view(), grad, dinput);
  EXPECT_TRUE(std::isfinite(loss));
  auto mean_loss = [&]() {
    const EvalResult r = model->Evaluate(params, batch.view());
    return r.loss_sum / static_cast<double>(r.count);
  };
  EXPECT_NEAR(mean_loss(), loss, 1e-5);
  GradCheckOptions opts;
  opts.max_skipped_fraction = 0.25;  // ReLU / pooling switches
  opts.max_coords = 1500;
  CheckGradient(c.name + " d/dparams", params, grad, mean_loss, opts);
  CheckGradient(c.name + " d/dinput", batch.x, dinput, mean_loss, opts);

  // Without dinput: the same parameter gradient, bit for bit.
  std::vector<float> grad2(params.size());
  const float loss2 = model->ForwardBackward(params, batch.view(), grad2);
  EXPECT_EQ(loss, loss2);
  EXPECT_EQ(grad, grad2);

  // Without grad (an attack's pass): the same input gradient, bit for bit.
  std::vector<float> dinput2(batch.x.size(), -7.0f);
  const float loss3 = model->ForwardBackward(params, batch.view(), {}, dinput2);
  EXPECT_EQ(loss, loss3);
  EXPECT_EQ(dinput, dinput2);
}

// A loss of the caller's: 1/n sum_i sum_j w_j l_ij^2 / 2 + l_i,y_i, whose
// d / d logits is (w_j l_ij + [j == y_i]) / n (w small, so that the loss's
// own curvature is not mistaken for a ReLU kink).
class SquaresLoss final : public LogitLoss {
 public:
  double Compute(std::span<const float> logits, const BatchView& batch, int k,
                 std::span<float> dlogits) override {
    ++calls;
    double sum = 0;
    for (int i = 0; i < batch.n; ++i) {
      for (int j = 0; j < k; ++j) {
        const double l = logits[static_cast<size_t>(i) * k + j];
        const double w = 0.02 * (1 + j);
        sum += w * l * l / 2 + (j == batch.y[i] ? l : 0.0);
        dlogits[static_cast<size_t>(i) * k + j] =
            static_cast<float>((w * l + (j == batch.y[i] ? 1.0 : 0.0)) / batch.n);
      }
    }
    return sum / batch.n;
  }
  int calls = 0;
};

// Model::ForwardBackwardLoss back-propagates the caller's d loss / d logits,
// in both numeric copies (the reproducible one where this host runs it).
TEST_P(ModelGradientTest, CallerGivenLogitLoss) {
  const GradCase& c = GetParam();
  for (ModelConfig::Numeric mode :
       {ModelConfig::Numeric::kNative, ModelConfig::Numeric::kReproducible}) {
    ModelConfig config = c.config;
    config.numeric = mode;
    absl::StatusOr<std::unique_ptr<Model>> made = NewModel(config);
    if (!made.ok()) continue;  // no reproducible copy on this host
    Model& model = **made;
    std::vector<float> params(model.NumParams());
    model.Init(7, params);
    Batch batch = RandomBatch(config, c.n, 10);
    SquaresLoss loss;
    std::vector<float> grad(params.size()), dinput(batch.x.size());
    const float value = model.ForwardBackwardLoss(params, batch.view(), loss, grad, dinput);
    EXPECT_EQ(loss.calls, 1);
    auto f = [&] {
      std::vector<float> logits(static_cast<size_t>(c.n) * config.num_classes);
      model.Logits(params, batch.view(), logits);
      std::vector<float> unused(logits.size());
      SquaresLoss l;
      return l.Compute(logits, batch.view(), config.num_classes, unused);
    };
    EXPECT_NEAR(value, f(), 1e-5 * (1 + std::abs(value)));
    GradCheckOptions opts;
    opts.max_skipped_fraction = 0.25;
    opts.max_coords = 800;
    const std::string name =
        c.name + (mode == ModelConfig::Numeric::kNative ? " native" : " reproducible");
    CheckGradient(name + " d/dparams", params, grad, f, opts);
    CheckGradient(name + " d/dinput", batch.x, dinput, f, opts);
  }
}

INSTANTIATE_TEST_SUITE_P(
    Models, ModelGradientTest,
    ::testing::Values(GradCase{"softmax", Softmax(1, 4, 3, 5), 4},
                      GradCase{"mlp", Mlp(10, {7, 6}, 4), 3},
                      GradCase{"mlp_no_hidden", Mlp(6, {}, 3), 2},
                      GradCase{"cnn_8x8", Cnn(1, 8, 8, 2, 3, 3, 8, 3), 2},
                      GradCase{"cnn_chw_odd", Cnn(2, 9, 10, 3, 2, 4, 6, 4), 2},
                      // Widths that are multiples of 32 take the AVX-512
                      // direct-convolution forward and (conv2) input gradient;
                      // the first conv reads one channel, or three channels
                      // first (CHW), as the datasets store images.
                      GradCase{"cnn_direct_1ch", Cnn(1, 12, 12, 32, 32, 3, 16, 5), 3},
                      GradCase{"cnn_direct_chw_3ch", Cnn(3, 10, 11, 32, 64, 5, 8, 4), 2}),
    [](const ::testing::TestParamInfo<GradCase>& info) { return info.param.name; });

TEST(ModelTest, ForwardBackwardIsDeterministicAndReusesWorkspaces) {
  ModelConfig cfg = Cnn(1, 12, 12, 4, 6, 3, 16, 10);
  auto model = MustNew(cfg);
  std::vector<float> params(model->NumParams());
  model->Init(3, params);
  Batch big = RandomBatch(cfg, 9, 1), small = RandomBatch(cfg, 3, 2);
  std::vector<float> g1(params.size()), g2(params.size()), g3(params.size());
  const float l1 = model->ForwardBackward(params, small.view(), g1);
  model->ForwardBackward(params, big.view(), g2);  // grows the workspaces
  const float l3 = model->ForwardBackward(params, small.view(), g3);
  EXPECT_EQ(l1, l3);
  EXPECT_EQ(g1, g3);
  // A fresh instance agrees bit for bit.
  auto other = MustNew(cfg);
  const float l4 = other->ForwardBackward(params, small.view(), g2);
  EXPECT_EQ(l1, l4);
  EXPECT_EQ(g1, g2);
}

TEST(ModelTest, EvaluateAndLogitsAgreeAcrossChunks) {
  ModelConfig cfg = Mlp(5, {8}, 3);
  auto model = MustNew(cfg);
  std::vector<float> params(model->NumParams());
  model->Init(4, params);
  const int n = 600;  // more than one evaluation chunk
  Batch b = RandomBatch(cfg, n, 5);
  std::vector<float> logits(static_cast<size_t>(n) * 3);
  model->Logits(params, b.view(), logits);
  EvalResult want;
  for (int i = 0; i < n; ++i) {
    const BatchView one{b.x.data() + i * 5, b.y.data() + i, 1};
    std::vector<float> l1(3);
    model->Logits(params, one, l1);
    // GEMM kernels differ with the row count: equal up to rounding.
    for (int j = 0; j < 3; ++j) ASSERT_NEAR(l1[j], logits[i * 3 + j], 1e-5);
    const EvalResult r = model->Evaluate(params, one);
    want.loss_sum += r.loss_sum;
    want.correct += r.correct;
    want.count += r.count;
  }
  const EvalResult got = model->Evaluate(params, b.view());
  EXPECT_EQ(got.count, n);
  EXPECT_NEAR(got.correct, want.correct, 1);  // a near-tie may flip
  EXPECT_NEAR(got.loss_sum, want.loss_sum, 1e-6 * n);
}

TEST(ModelTest, BatchGradientIsMeanOfExampleGradients) {
  ModelConfig cfg = Cnn(1, 8, 8, 2, 3, 3, 8, 3);
  auto model = MustNew(cfg);
  std::vector<float> params(model->NumParams());
  model->Init(6, params);
  Batch b = RandomBatch(cfg, 4, 7);
  std::vector<float> g(params.size()), gi(params.size()), mean(params.size(), 0.0f);
  model->ForwardBackward(params, b.view(), g);
  for (int i = 0; i < 4; ++i) {
    const BatchView one{b.x.data() + i * cfg.input_dim(), b.y.data() + i, 1};
    model->ForwardBackward(params, one, gi);
    for (size_t j = 0; j < g.size(); ++j) mean[j] += gi[j] / 4;
  }
  for (size_t j = 0; j < g.size(); ++j) ASSERT_NEAR(g[j], mean[j], 1e-5) << j;
}

// ForwardBackwardStep (per-layer fused SGD update) must equal ForwardBackward
// + Sgd::Step bit for bit, step after step, whatever the SGD options.
TEST(ModelTest, FusedStepIsBitIdenticalToForwardBackwardPlusStep) {
  struct Case {
    ModelConfig cfg;
    int batch;
  };
  const Case cases[] = {{Mlp(784, {200, 200}, 10), 10},  // tiles of the big layers
                        {Mlp(6, {5, 4}, 3), 3},
                        {Softmax(1, 7, 9, 4), 5},
                        {Cnn(1, 12, 12, 4, 6, 3, 40, 10), 7},
                        {Cnn(1, 28, 28, 32, 64, 5, 512, 10), 3},  // the McMahan CNN
                        {Cnn(2, 9, 10, 3, 2, 4, 6, 4), 2}};
  const SgdOptions opts[] = {{.lr = 0.1},
                             {.lr = 0.05, .momentum = 0.9},
                             {.lr = 0.05, .momentum = 0.9, .weight_decay = 1e-3, .prox_mu = 0.01},
                             {.lr = 0.02, .weight_decay = 1e-2, .prox_mu = 0.1}};
  std::vector<ModelConfig::Numeric> modes = {ModelConfig::Numeric::kNative};
  // The reproducible copy has its own (AVX2) build of the fused kernels.
  if (CheckNumericSupport(ModelConfig::Numeric::kReproducible).ok()) {
    modes.push_back(ModelConfig::Numeric::kReproducible);
  }
  std::vector<Case> runs;
  for (const ModelConfig::Numeric mode : modes) {
    for (Case c : cases) {
      c.cfg.numeric = mode;
      runs.push_back(c);
    }
  }
  for (const Case& c : runs) {
    auto fused = MustNew(c.cfg);
    auto plain = MustNew(c.cfg);
    std::vector<float> anchor(fused->NumParams());
    fused->Init(8, anchor);
    for (const SgdOptions& o : opts) {
      std::vector<float> p1 = anchor, p2 = anchor, grad(anchor.size());
      Sgd s1(o, anchor.size()), s2(o, anchor.size());
      for (int step = 0; step < 3; ++step) {
        Batch b = RandomBatch(c.cfg, c.batch, 20 + step);
        const float l1 = fused->ForwardBackwardStep(p1, b.view(), s1, anchor);
        const float l2 = plain->ForwardBackward(p2, b.view(), grad);
        s2.Step(p2, grad, anchor);
        ASSERT_EQ(l1, l2) << c.cfg.ToString() << " step " << step;
        ASSERT_EQ(p1, p2) << c.cfg.ToString() << " step " << step << " lr " << o.lr
                          << (c.cfg.numeric == ModelConfig::Numeric::kNative ? " native"
                                                                             : " reproducible");
      }
    }
  }
}

}  // namespace
}  // namespace fedsim
