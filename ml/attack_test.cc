#include "ml/attack.h"

#include <cmath>
#include <limits>
#include <memory>
#include <vector>

#include "gtest/gtest.h"
#include "ml/attack_test_util.h"
#include "ml/model.h"
#include "util/rng.h"

namespace fedsim {
namespace {

using testing::Accuracy;
using testing::Examples;
using testing::MeanLoss;
using testing::SeparableData;
using testing::TrainPlain;
using testing::VectorModel;
using Kind = ModelConfig::Kind;

std::unique_ptr<Model> MustModel(const ModelConfig& c) {
  auto m = NewModel(c);
  EXPECT_TRUE(m.ok()) << m.status();
  return std::move(m).value();
}

std::unique_ptr<Attack> MustAttack(const AttackOptions& o) {
  auto a = NewAttack(o);
  EXPECT_TRUE(a.ok()) << a.status();
  return std::move(a).value();
}

ModelConfig SmallCnn() {
  ModelConfig c;
  c.kind = Kind::kCnn;
  c.input_height = 8;
  c.input_width = 8;
  c.conv1 = 3;
  c.conv2 = 4;
  c.kernel = 3;
  c.fc = 8;
  c.num_classes = 4;
  return c;
}

// Random inputs in [0, 1] with some pixels exactly at the ends of the range.
Examples RandomInputs(const ModelConfig& c, int n, uint64_t seed) {
  Rng rng(seed, "inputs");
  Examples e;
  e.dim = c.input_dim();
  e.x.resize(static_cast<size_t>(n) * e.dim);
  for (float& v : e.x) {
    const double u = rng.Uniform();
    v = u < 0.15 ? 0.0f : u > 0.85 ? 1.0f : static_cast<float>(rng.Uniform());
  }
  for (int i = 0; i < n; ++i) e.y.push_back(static_cast<int32_t>(rng.UniformInt(c.num_classes)));
  return e;
}

std::vector<float> Perturbed(Attack& attack, Model& model, std::span<const float> params,
                             const BatchView& b, uint64_t rng_seed = 5) {
  std::vector<float> out(static_cast<size_t>(b.n) * model.config().input_dim());
  Rng rng(rng_seed, "attack");
  attack.Perturb(model, params, b, rng, out);
  return out;
}

// Every attack configuration the tests sweep: both kinds and norms, with and
// without a random start.
std::vector<AttackOptions> AllAttacks(double eps) {
  std::vector<AttackOptions> all;
  for (AttackNorm norm : {AttackNorm::kLinf, AttackNorm::kL2}) {
    all.push_back(Fgsm(norm, eps));
    for (bool rs : {false, true}) {
      all.push_back(AttackOptions{.norm = norm,
                                  .eps = eps,
                                  .step_size = norm == AttackNorm::kLinf ? 0.05 : 0.5,
                                  .steps = 5,
                                  .random_start = rs});
    }
  }
  return all;
}

TEST(AttackTest, EpsZeroGivesTheCleanInputAndLossExactly) {
  for (const ModelConfig& c :
       {VectorModel(Kind::kSoftmax, 12, 3), VectorModel(Kind::kMlp, 12, 3), SmallCnn()}) {
    auto model = MustModel(c);
    std::vector<float> params(model->NumParams());
    model->Init(3, params);
    const Examples e = RandomInputs(c, 6, 4);
    const double clean = MeanLoss(*model, params, e.view());
    for (AttackOptions o : AllAttacks(0.0)) {
      o.step_size = 0.3;  // a large step that the projection must undo
      auto attack = MustAttack(o);
      const std::vector<float> adv = Perturbed(*attack, *model, params, e.view());
      ASSERT_EQ(adv, e.x) << c.ToString() << " " << attack->Name();
      const BatchView av{adv.data(), e.y.data(), e.n()};
      EXPECT_EQ(MeanLoss(*model, params, av), clean) << attack->Name();
    }
  }
}

// Checks every element: |x_adv - x| <= eps (L-infinity) or each row's
// ||x_adv - x||_2 <= eps (up to float rounding), and x_adv in the range.
void ExpectInBallAndRange(const AttackOptions& o, const Examples& e, const std::vector<float>& adv,
                          const std::string& what) {
  ASSERT_EQ(adv.size(), e.x.size());
  for (int r = 0; r < e.n(); ++r) {
    double sq = 0.0;
    for (int j = 0; j < e.dim; ++j) {
      const size_t i = static_cast<size_t>(r) * e.dim + j;
      const double d = static_cast<double>(adv[i]) - e.x[i];
      ASSERT_GE(adv[i], std::min(o.clip_min, e.x[i])) << what << " element " << i;
      ASSERT_LE(adv[i], std::max(o.clip_max, e.x[i])) << what << " element " << i;
      if (o.norm == AttackNorm::kLinf) {
        ASSERT_LE(std::abs(d), o.eps) << what << " element " << i;
      }
      sq += d * d;
    }
    if (o.norm == AttackNorm::kL2) {
      ASSERT_LE(std::sqrt(sq), o.eps * (1 + 1e-5) + 1e-6) << what << " row " << r;
    }
  }
}

TEST(AttackTest, NeverLeavesTheBallOrTheValidRange) {
  for (const ModelConfig& c :
       {VectorModel(Kind::kSoftmax, 12, 3), VectorModel(Kind::kMlp, 12, 3), SmallCnn()}) {
    auto model = MustModel(c);
    std::vector<float> params(model->NumParams());
    model->Init(5, params);
    const Examples e = RandomInputs(c, 7, 6);
    for (double eps : {0.03, 0.3, 2.0}) {
      for (AttackOptions o : AllAttacks(eps)) {
        // Steps far larger than the ball, and many of them.
        o.step_size = 4 * eps;
        if (o.kind == AttackKind::kPgd) o.steps = 12;
        auto attack = MustAttack(o);
        ExpectInBallAndRange(o, e, Perturbed(*attack, *model, params, e.view()),
                             c.ToString() + " " + attack->Name());
      }
    }
  }
}

TEST(AttackTest, NarrowAndUnboundedRanges) {
  const ModelConfig c = VectorModel(Kind::kMlp, 12, 3);
  auto model = MustModel(c);
  std::vector<float> params(model->NumParams());
  model->Init(5, params);
  Examples e = RandomInputs(c, 5, 7);
  // Two clean values outside [0, 1]: never pushed further out.
  e.x[3] = -0.5f;
  e.x[20] = 1.5f;
  const float inf = std::numeric_limits<float>::infinity();
  for (auto [lo, hi] : {std::pair{0.4f, 0.6f}, std::pair{0.0f, 1.0f}, std::pair{-inf, inf}}) {
    for (AttackOptions o : AllAttacks(0.2)) {
      o.clip_min = lo;
      o.clip_max = hi;
      auto attack = MustAttack(o);
      const std::vector<float> adv = Perturbed(*attack, *model, params, e.view());
      ExpectInBallAndRange(o, e, adv, attack->Name());
      if (lo == -inf) {
        // Unbounded: pixels that start at 0 or 1 may now leave [0, 1].
        bool moved_out = false;
        for (size_t i = 0; i < adv.size(); ++i) moved_out |= adv[i] < 0.0f || adv[i] > 1.0f;
        EXPECT_TRUE(moved_out) << attack->Name() << ": nothing left [0, 1] without a range";
      }
    }
  }
}

// A model with all-zero parameters has d loss / d x = 0: the attack's steps
// do not move, and what comes out is the random start itself.
TEST(AttackTest, RandomStartIsUniformInTheBall) {
  for (int dim : {2, 3}) {
    const ModelConfig c = VectorModel(Kind::kSoftmax, dim, 2);
    auto model = MustModel(c);
    std::vector<float> zero(model->NumParams(), 0.0f);
    const int n = 20000;
    Examples e;
    e.dim = dim;
    e.x.assign(static_cast<size_t>(n) * dim, 0.5f);
    e.y.assign(n, 0);
    for (AttackNorm norm : {AttackNorm::kLinf, AttackNorm::kL2}) {
      const double eps = 0.2;
      auto attack =
          MustAttack(AttackOptions{.norm = norm, .eps = eps, .step_size = 0.05, .steps = 1});
      const std::vector<float> adv = Perturbed(*attack, *model, zero, e.view(), 11);
      // Fraction of points within half the radius; mean of the first
      // coordinate's offset.
      int inner = 0;
      double mean0 = 0.0, max_r = 0.0;
      for (int r = 0; r < n; ++r) {
        double sq = 0.0, linf = 0.0;
        for (int j = 0; j < dim; ++j) {
          const double d = adv[static_cast<size_t>(r) * dim + j] - 0.5;
          sq += d * d;
          linf = std::max(linf, std::abs(d));
          if (j == 0) mean0 += d / n;
        }
        const double radius = norm == AttackNorm::kLinf ? linf : std::sqrt(sq);
        inner += radius < eps / 2;
        max_r = std::max(max_r, radius);
      }
      // Uniform in the ball: P(radius < eps / 2) = 2^-dim for both norms
      // (a cube is the L-infinity ball); a point on the sphere would give 0.
      const double want = std::pow(0.5, dim);
      EXPECT_NEAR(static_cast<double>(inner) / n, want, 0.015) << dim << " " << attack->Name();
      EXPECT_NEAR(mean0, 0.0, 0.005) << attack->Name();
      EXPECT_LE(max_r, eps * (1 + 1e-5));
      EXPECT_GT(max_r, 0.99 * eps);
    }
  }
}

// Passes the calls on to a real model and counts the gradient passes.
class CountingModel final : public Model {
 public:
  explicit CountingModel(std::unique_ptr<Model> inner) : inner_(std::move(inner)) {}
  const ModelConfig& config() const override { return inner_->config(); }
  size_t NumParams() const override { return inner_->NumParams(); }
  void Init(uint64_t seed, std::span<float> params) const override { inner_->Init(seed, params); }
  float ForwardBackward(std::span<const float> params, const BatchView& batch,
                        std::span<float> grad, std::span<float> dinput) override {
    ++passes;
    EXPECT_FALSE(dinput.empty()) << "an attack pass must ask for d loss / d x";
    return inner_->ForwardBackward(params, batch, grad, dinput);
  }
  float ForwardBackwardLoss(std::span<const float> params, const BatchView& batch, LogitLoss& loss,
                            std::span<float> grad, std::span<float> dinput) override {
    ++passes;
    EXPECT_FALSE(dinput.empty()) << "an attack pass must ask for d loss / d x";
    return inner_->ForwardBackwardLoss(params, batch, loss, grad, dinput);
  }
  EvalResult Evaluate(std::span<const float> params, const BatchView& batch) override {
    return inner_->Evaluate(params, batch);
  }
  void Logits(std::span<const float> params, const BatchView& batch,
              std::span<float> out) override {
    inner_->Logits(params, batch, out);
  }
  int passes = 0;

 private:
  std::unique_ptr<Model> inner_;
};

// ALGORITHMS.md section 7: public code has shipped attacks whose
// hyperparameters never reached the loop, and "no random start" labels that
// used one. Each configured value must change what the attack does.
TEST(AttackTest, ConfiguredValuesReachTheAttack) {
  const ModelConfig c = VectorModel(Kind::kMlp, 12, 3);
  CountingModel model(MustModel(c));
  std::vector<float> params(model.NumParams());
  model.Init(8, params);
  Examples e = RandomInputs(c, 6, 9);
  for (float& v : e.x) v = 0.25f + 0.5f * v;  // away from the range's ends

  // steps: exactly that many gradient passes; FGSM one.
  for (int k : {1, 3, 7}) {
    model.passes = 0;
    auto attack = MustAttack(AttackOptions{.steps = k});
    Perturbed(*attack, model, params, e.view());
    EXPECT_EQ(model.passes, k);
    EXPECT_EQ(attack->gradient_passes(), k);
  }
  model.passes = 0;
  Perturbed(*MustAttack(Fgsm(AttackNorm::kLinf, 0.1)), model, params, e.view());
  EXPECT_EQ(model.passes, 1);

  // random_start: off draws nothing and ignores the stream; on draws, and
  // different streams give different points.
  for (bool rs : {false, true}) {
    auto attack = MustAttack(AttackOptions{.eps = 0.1, .steps = 2, .random_start = rs});
    std::vector<float> a(e.x.size()), b(e.x.size());
    Rng r1(1, "attack"), r2(2, "attack");
    attack->Perturb(model, params, e.view(), r1, a);
    attack->Perturb(model, params, e.view(), r2, b);
    EXPECT_EQ(r1.draws() > 0, rs) << attack->Name();
    EXPECT_EQ(a != b, rs) << attack->Name();
    EXPECT_NE(attack->Name().find(rs ? "start=random" : "start=clean"), std::string::npos);
  }

  // step_size (L-infinity, one step from x, ball larger than the step):
  // every coordinate moves by exactly 0 or a.
  for (double a : {0.013, 0.031}) {
    auto attack =
        MustAttack(AttackOptions{.eps = 0.2, .step_size = a, .steps = 1, .random_start = false});
    const std::vector<float> adv = Perturbed(*attack, model, params, e.view());
    int moved = 0;
    for (size_t i = 0; i < adv.size(); ++i) {
      const double d = std::abs(static_cast<double>(adv[i]) - e.x[i]);
      if (d != 0.0) {
        ++moved;
        ASSERT_NEAR(d, a, 1e-6) << i;
      }
    }
    EXPECT_GT(moved, static_cast<int>(adv.size()) / 2);
  }

  // eps: many large steps saturate at the boundary, |d| = eps.
  for (double eps : {0.05, 0.12}) {
    auto attack =
        MustAttack(AttackOptions{.eps = eps, .step_size = 0.1, .steps = 6, .random_start = false});
    const std::vector<float> adv = Perturbed(*attack, model, params, e.view());
    double max_d = 0.0;
    for (size_t i = 0; i < adv.size(); ++i) {
      max_d = std::max(max_d, std::abs(static_cast<double>(adv[i]) - e.x[i]));
    }
    EXPECT_NEAR(max_d, eps, 1e-6);
  }

  // norm: one L2 step from x moves each row by exactly a, along the
  // gradient (not its sign).
  {
    const double a = 0.07;
    auto attack = MustAttack(AttackOptions{
        .norm = AttackNorm::kL2, .eps = 1.0, .step_size = a, .steps = 1, .random_start = false});
    const std::vector<float> adv = Perturbed(*attack, model, params, e.view());
    std::vector<float> grad(params.size()), dx(e.x.size());
    model.ForwardBackward(params, e.view(), grad, dx);
    for (int r = 0; r < e.n(); ++r) {
      double sq = 0.0, gsq = 0.0, dot = 0.0;
      for (int j = 0; j < e.dim; ++j) {
        const size_t i = static_cast<size_t>(r) * e.dim + j;
        const double d = static_cast<double>(adv[i]) - e.x[i];
        sq += d * d;
        gsq += static_cast<double>(dx[i]) * dx[i];
        dot += d * dx[i];
      }
      EXPECT_NEAR(std::sqrt(sq), a, 1e-6) << r;
      EXPECT_NEAR(dot / std::sqrt(sq * gsq), 1.0, 1e-5) << r;  // cosine
    }
  }

  EXPECT_EQ(AttackName(AttackOptions{}), "pgd(linf, eps=0.1, step=0.01, k=10, start=random)");
  EXPECT_EQ(AttackName(Fgsm(AttackNorm::kL2, 1.5)), "fgsm(l2, eps=1.5, step=1.5, start=clean)");
  EXPECT_EQ(AttackName(AttackOptions{.steps = 3, .clip_min = -1.0f}),
            "pgd(linf, eps=0.1, step=0.01, k=3, start=random, range=[-1, 1])");
}

TEST(AttackTest, DeterministicForAStream) {
  const ModelConfig c = SmallCnn();
  auto model = MustModel(c);
  std::vector<float> params(model->NumParams());
  model->Init(2, params);
  const Examples e = RandomInputs(c, 5, 3);
  for (const AttackOptions& o : AllAttacks(0.1)) {
    auto a1 = MustAttack(o), a2 = MustAttack(o);
    EXPECT_EQ(Perturbed(*a1, *model, params, e.view(), 7),
              Perturbed(*a2, *model, params, e.view(), 7))
        << a1->Name();
  }
}

TEST(AttackTest, RejectsBadOptions) {
  auto bad = [](AttackOptions o, const std::string& field) {
    auto a = NewAttack(o);
    ASSERT_FALSE(a.ok()) << AttackName(o);
    EXPECT_EQ(a.status().code(), absl::StatusCode::kInvalidArgument);
    EXPECT_NE(a.status().message().find(field), std::string::npos) << a.status();
  };
  bad(AttackOptions{.eps = -0.1}, "eps");
  bad(AttackOptions{.eps = std::nan("")}, "eps");
  bad(AttackOptions{.step_size = 0}, "step_size");
  bad(AttackOptions{.steps = 0}, "steps");
  AttackOptions fgsm = Fgsm(AttackNorm::kLinf, 0.1);
  fgsm.steps = 10;
  bad(fgsm, "one step");
  bad(AttackOptions{.clip_min = 1.0f, .clip_max = 0.0f}, "clip_min");
  bad(AttackOptions{.clip_min = std::nanf("")}, "clip_min");
}

// On a model that has learned separable data: PGD finds at least the loss
// FGSM finds, which is above the clean loss; accuracy under attack never
// rises with eps, and falls a lot by the largest.
class TrainedModelTest : public ::testing::TestWithParam<Kind> {
 protected:
  void SetUp() override {
    config_ = VectorModel(GetParam(), 20, 4, {32});
    model_ = MustModel(config_);
    params_.resize(model_->NumParams());
    model_->Init(1, params_);
    TrainPlain(*model_, params_, SeparableData(20, 4, 2000, 1), 5, 0.05);
    test_ = SeparableData(20, 4, 400, 2);
    ASSERT_GT(Accuracy(*model_, params_, test_.view()), 0.97) << "the model did not learn";
  }

  double AttackedLoss(const AttackOptions& o, double* accuracy) {
    const std::vector<float> adv = Perturbed(*MustAttack(o), *model_, params_, test_.view());
    const BatchView av{adv.data(), test_.y.data(), test_.n()};
    if (accuracy != nullptr) *accuracy = Accuracy(*model_, params_, av);
    return MeanLoss(*model_, params_, av);
  }

  ModelConfig config_;
  std::unique_ptr<Model> model_;
  std::vector<float> params_;
  Examples test_;
};

TEST_P(TrainedModelTest, PgdLossAtLeastFgsmLossAtLeastCleanLoss) {
  const double clean = MeanLoss(*model_, params_, test_.view());
  for (AttackNorm norm : {AttackNorm::kLinf, AttackNorm::kL2}) {
    const double eps = norm == AttackNorm::kLinf ? 0.05 : 0.2;
    const double fgsm = AttackedLoss(Fgsm(norm, eps), nullptr);
    // From a random start on (nearly) the L2 sphere, each projected step
    // shrinks the angle to the gradient by about eps / (eps + a): the L2
    // attack needs larger steps to converge than the L-infinity one.
    const double step = norm == AttackNorm::kLinf ? eps / 4 : eps / 2;
    for (bool rs : {false, true}) {
      const double pgd = AttackedLoss(
          AttackOptions{
              .norm = norm, .eps = eps, .step_size = step, .steps = 20, .random_start = rs},
          nullptr);
      EXPECT_GE(pgd, fgsm) << "norm " << static_cast<int>(norm) << " random_start " << rs;
    }
    EXPECT_GT(fgsm, clean * 1.5) << "FGSM barely hurts";
  }
}

TEST_P(TrainedModelTest, AccuracyUnderAttackDoesNotRiseWithEps) {
  for (AttackNorm norm : {AttackNorm::kLinf, AttackNorm::kL2}) {
    const double scale = norm == AttackNorm::kLinf ? 1.0 : 4.0;  // L2 balls are wider
    double prev = Accuracy(*model_, params_, test_.view());
    const double clean = prev;
    for (double eps : {0.02, 0.05, 0.1, 0.15, 0.25}) {
      double acc = 0.0;
      AttackedLoss(AttackOptions{.norm = norm,
                                 .eps = eps * scale,
                                 .step_size = eps * scale / 5,
                                 .steps = 20,
                                 .random_start = false},
                   &acc);
      EXPECT_LE(acc, prev) << "eps " << eps * scale;
      prev = acc;
    }
    EXPECT_LT(prev, clean - 0.5) << "the largest eps should break most predictions";
  }
}

INSTANTIATE_TEST_SUITE_P(Models, TrainedModelTest, ::testing::Values(Kind::kSoftmax, Kind::kMlp),
                         [](const ::testing::TestParamInfo<Kind>& info) {
                           return info.param == Kind::kSoftmax ? "softmax" : "mlp";
                         });

}  // namespace
}  // namespace fedsim
