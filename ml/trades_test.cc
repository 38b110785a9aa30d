#include "ml/trades.h"

#include <cmath>
#include <memory>
#include <numeric>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "ml/attack_test_util.h"
#include "ml/grad_check_test_util.h"
#include "ml/local_trainer.h"
#include "ml/numeric.h"
#include "ml/optimizer.h"
#include "util/rng.h"

namespace fedsim {
namespace {

using testing::Accuracy;
using testing::CheckGradient;
using testing::Examples;
using testing::GradCheckOptions;
using ::testing::HasSubstr;
using testing::SeparableData;
using testing::VectorModel;
using Kind = ModelConfig::Kind;

std::vector<float> RandomLogits(int n, int k, uint64_t seed) {
  Rng rng(seed, "logits");
  std::vector<float> l(static_cast<size_t>(n) * k);
  for (float& v : l) v = static_cast<float>(rng.Normal(0.0, 2.0));
  return l;
}

// KL(softmax(a) || softmax(b)) of one row, written out naively in double.
double NaiveKl(const float* a, const float* b, int k) {
  double za = 0, zb = 0;
  for (int j = 0; j < k; ++j) {
    za += std::exp(static_cast<double>(a[j]));
    zb += std::exp(static_cast<double>(b[j]));
  }
  double kl = 0;
  for (int j = 0; j < k; ++j) {
    const double p = std::exp(static_cast<double>(a[j])) / za;
    kl += p * (std::log(p) - (b[j] - std::log(zb)));
  }
  return kl;
}

// The value against its definition, and the KL term alone against the
// naive formula.
TEST(TradesLossTest, ValueIsCrossEntropyPlusBetaKl) {
  const int n = 4, k = 6;
  const std::vector<float> clean = RandomLogits(n, k, 1), adv = RandomLogits(n, k, 2);
  const std::vector<int32_t> y = {0, 5, 2, 2};
  double ce = 0, kl = 0;
  for (int i = 0; i < n; ++i) {
    const float* c = clean.data() + i * k;
    double z = 0;
    for (int j = 0; j < k; ++j) z += std::exp(static_cast<double>(c[j]));
    ce += std::log(z) - c[y[i]];
    kl += NaiveKl(c, adv.data() + i * k, k);
  }
  ce /= n;
  kl /= n;
  EXPECT_GT(kl, 0.1);
  for (double beta : {0.0, 1.0, 6.0}) {
    EXPECT_NEAR(TradesLoss(clean.data(), adv.data(), y.data(), n, k, beta, nullptr, nullptr),
                ce + beta * kl, 1e-6 * (1 + ce + beta * kl))
        << beta;
  }
  // The same logits on both sides: no KL term.
  EXPECT_NEAR(TradesLoss(clean.data(), clean.data(), y.data(), n, k, 6.0, nullptr, nullptr), ce,
              1e-6);
}

// The gradient of the whole loss and of the KL term alone (the difference
// of two betas over their difference), on both logit blocks, against
// central differences.
TEST(TradesLossTest, GradientsMatchFiniteDifferences) {
  const int n = 3, k = 5;
  std::vector<float> clean = RandomLogits(n, k, 3), adv = RandomLogits(n, k, 4);
  const std::vector<int32_t> y = {1, 4, 0};
  GradCheckOptions o;
  o.atol = 1e-4;
  o.rtol = 1e-3;
  o.kink = 1e-3;  // smooth: nothing may be skipped
  o.max_skipped_fraction = 0;
  for (double beta : {0.0, 2.5}) {
    std::vector<float> dclean(clean.size()), dadv(adv.size());
    TradesLoss(clean.data(), adv.data(), y.data(), n, k, beta, dclean.data(), dadv.data());
    auto loss = [&] {
      return TradesLoss(clean.data(), adv.data(), y.data(), n, k, beta, nullptr, nullptr);
    };
    CheckGradient("d/dclean beta=" + std::to_string(beta), clean, dclean, loss, o);
    if (beta > 0) CheckGradient("d/dadv", adv, dadv, loss, o);
  }
  // The KL term: (L(beta) - L(0)) / beta.
  std::vector<float> d0(clean.size()), d1(clean.size()), a0(adv.size()), a1(adv.size());
  TradesLoss(clean.data(), adv.data(), y.data(), n, k, 0.0, d0.data(), a0.data());
  TradesLoss(clean.data(), adv.data(), y.data(), n, k, 1.0, d1.data(), a1.data());
  std::vector<float> kl_clean(clean.size()), kl_adv(adv.size());
  for (size_t i = 0; i < clean.size(); ++i) {
    kl_clean[i] = d1[i] - d0[i];
    kl_adv[i] = a1[i] - a0[i];
    EXPECT_EQ(a0[i], 0.0f);  // no KL, no gradient on the attacked side
  }
  auto kl = [&] {
    double sum = 0;
    for (int i = 0; i < n; ++i) sum += NaiveKl(clean.data() + i * k, adv.data() + i * k, k);
    return sum / n;
  };
  o.atol = 1e-5;
  CheckGradient("dKL/dclean", clean, kl_clean, kl, o);
  CheckGradient("dKL/dadv", adv, kl_adv, kl, o);
}

std::vector<ModelConfig::Numeric> Modes() {
  std::vector<ModelConfig::Numeric> modes = {ModelConfig::Numeric::kNative};
  if (CheckNumericSupport(ModelConfig::Numeric::kReproducible).ok()) {
    modes.push_back(ModelConfig::Numeric::kReproducible);
  }
  return modes;
}

// The objective's parameter gradient through the model, for a fixed
// attacked batch, against central differences, in every numeric copy.
TEST(TradesObjectiveTest, ParameterGradientThroughTheModelMatchesFiniteDifferences) {
  for (ModelConfig::Numeric mode : Modes()) {
    ModelConfig c = VectorModel(Kind::kMlp, 8, 4, {10});
    c.numeric = mode;
    auto model = std::move(NewModel(c).value());
    std::vector<float> params(model->NumParams());
    model->Init(5, params);
    // [x; x'] with x' = x + noise, labels repeated.
    const int n = 3;
    Examples e = SeparableData(8, 4, n, 6);
    Rng rng(7, "noise");
    std::vector<float> x = e.x;
    for (float v : e.x) x.push_back(v + static_cast<float>(rng.Uniform(-0.3, 0.3)));
    std::vector<int32_t> y = e.y;
    y.insert(y.end(), e.y.begin(), e.y.end());
    const BatchView pair{x.data(), y.data(), 2 * n};
    const std::unique_ptr<LogitLoss> loss = NewTradesPairLoss(3.0);
    std::vector<float> grad(params.size()), dinput(x.size());
    const float value = model->ForwardBackwardLoss(params, pair, *loss, grad, dinput);
    auto f = [&] {
      std::vector<float> logits(2 * n * 4);
      model->Logits(params, pair, logits);
      return TradesLoss(logits.data(), logits.data() + n * 4, y.data(), n, 4, 3.0, nullptr,
                        nullptr);
    };
    EXPECT_NEAR(value, f(), 1e-5);
    GradCheckOptions o;
    o.max_skipped_fraction = 0.25;  // ReLU switches
    const std::string name = mode == ModelConfig::Numeric::kNative ? "native" : "repro";
    CheckGradient(name + " d/dparams", params, grad, f, o);
    CheckGradient(name + " d/dinput", x, dinput, f, o);
    // Input gradient only (an attack's pass): the same, bit for bit.
    std::vector<float> dinput2(x.size());
    model->ForwardBackwardLoss(params, pair, *loss, {}, dinput2);
    EXPECT_EQ(dinput, dinput2);
  }
}

struct Fixture {
  Fixture() : data(SeparableData(12, 3, 16, 2)) {
    model = std::move(NewModel(VectorModel(Kind::kMlp, 12, 3, {16})).value());
    params.resize(model->NumParams());
    model->Init(4, params);
  }
  std::unique_ptr<Objective> Trades(double beta, int steps = 5) {
    TradesOptions o;
    o.attack = AttackOptions{.eps = 0.1, .step_size = 0.03, .steps = steps};
    o.beta = beta;
    auto obj = NewTradesObjective(o);
    EXPECT_TRUE(obj.ok()) << obj.status();
    return std::move(obj).value();
  }
  Examples data;
  std::unique_ptr<Model> model;
  std::vector<float> params;
};

// beta = 0 leaves the clean cross-entropy: its value and gradient up to
// rounding (the loss is computed by other code than the model's), and SGD
// on it follows clean SGD.
TEST(TradesObjectiveTest, BetaZeroIsCleanTraining) {
  Fixture f;
  auto trades = f.Trades(0.0);
  std::vector<float> g(f.params.size()), want(f.params.size());
  Rng rng(1, "optimizer");
  const float loss = trades->Gradient(*f.model, f.params, f.data.view(), rng, g);
  const float clean = f.model->ForwardBackward(f.params, f.data.view(), want);
  EXPECT_NEAR(loss, clean, 1e-6);
  double scale = 0;
  for (float v : want) scale = std::max(scale, std::abs(static_cast<double>(v)));
  ASSERT_GT(scale, 1e-3);
  for (size_t i = 0; i < g.size(); ++i) ASSERT_NEAR(g[i], want[i], 1e-6 * scale) << i;

  const SgdOptions sgd{.lr = 0.1, .momentum = 0.9};
  auto with_trades = std::move(NewSgdOptimizer(sgd, f.params.size(), f.Trades(0.0)).value());
  auto plain = std::move(NewSgdOptimizer(sgd, f.params.size()).value());
  std::vector<float> a = f.params, b = f.params;
  for (uint64_t step = 0; step < 10; ++step) {
    Rng r1(1, "optimizer", step), r2(1, "optimizer", step);
    with_trades->Step(*f.model, a, f.data.view(), {}, r1);
    plain->Step(*f.model, b, f.data.view(), {}, r2);
  }
  for (size_t i = 0; i < a.size(); ++i) ASSERT_NEAR(a[i], b[i], 1e-5) << i;
  EXPECT_NE(a, f.params);
}

// A pure function of the stream: equal streams give equal bits, and the
// random start makes another stream give another gradient.
TEST(TradesObjectiveTest, DeterministicFromTheRng) {
  Fixture f;
  auto one = f.Trades(6.0), two = f.Trades(6.0);
  std::vector<float> g1(f.params.size()), g2(f.params.size()), g3(f.params.size());
  Rng r1(9, "optimizer", 3), r2(9, "optimizer", 3), r3(9, "optimizer", 4);
  const float l1 = one->Gradient(*f.model, f.params, f.data.view(), r1, g1);
  const float l2 = two->Gradient(*f.model, f.params, f.data.view(), r2, g2);
  EXPECT_EQ(l1, l2);
  EXPECT_EQ(g1, g2);
  EXPECT_GT(r1.draws(), 0u);
  // The objective object reused: still the same bits.
  Rng r1b(9, "optimizer", 3);
  one->Gradient(*f.model, f.params, f.data.view(), r1b, g3);
  EXPECT_EQ(g1, g3);
  two->Gradient(*f.model, f.params, f.data.view(), r3, g3);
  EXPECT_NE(g1, g3);
}

// The attack ascends the KL term: the objective at the attacked point is
// larger than with the random start alone (PGD with one tiny step).
TEST(TradesObjectiveTest, AttackRaisesTheKlTerm) {
  Fixture f;
  testing::TrainPlain(*f.model, f.params, SeparableData(12, 3, 400, 5), 5, 0.1);
  std::vector<float> g(f.params.size());
  auto weak = f.Trades(6.0, 1);  // one step of 0.03 from the random start
  auto strong = f.Trades(6.0, 10);
  Rng r1(2, "optimizer"), r2(2, "optimizer");
  const float weak_loss = weak->Gradient(*f.model, f.params, f.data.view(), r1, g);
  const float strong_loss = strong->Gradient(*f.model, f.params, f.data.view(), r2, g);
  EXPECT_GT(strong_loss, weak_loss + 0.01) << weak_loss << " " << strong_loss;
}

TEST(TradesOptionsTest, NamesValidationAndPasses) {
  TradesOptions o;
  EXPECT_EQ(TradesName(o), "trades(beta=6, pgd(linf, eps=0.1, step=0.01, k=10, start=random))");
  EXPECT_EQ(TradesPasses(o), 12);
  EXPECT_TRUE(ValidateTradesOptions(o).ok());
  o.beta = -1;
  EXPECT_THAT(ValidateTradesOptions(o).message(), HasSubstr("beta"));
  o.beta = NAN;
  EXPECT_THAT(ValidateTradesOptions(o).message(), HasSubstr("beta"));
  o.beta = 1;
  o.attack.random_start = false;
  EXPECT_THAT(NewTradesObjective(o).status().message(), HasSubstr("random start"));
  o.attack.random_start = true;
  o.attack.steps = 0;
  EXPECT_THAT(NewTradesObjective(o).status().message(), HasSubstr("steps"));

  // The optimizers count the objective's passes.
  o.attack.steps = 7;
  auto sgd = std::move(NewSgdOptimizer({}, 10, std::move(NewTradesObjective(o).value())).value());
  EXPECT_EQ(sgd->passes_per_step(), 9);
  EXPECT_THAT(sgd->Name(), HasSubstr("sgd(lr=0.1) on trades(beta=1"));
  auto sam =
      std::move(NewSamOptimizer({}, {}, 10, std::move(NewTradesObjective(o).value())).value());
  EXPECT_EQ(sam->passes_per_step(), 18);
}

// TRADES end to end through TrainLocal: more robust than clean training,
// at a small clean-accuracy cost (as adversarial_test.cc checks for Madry's
// adversarial training).
TEST(TradesTrainingTest, MakesTheModelRobust) {
  const int dim = 20;
  const Examples train = SeparableData(dim, 4, 2000, 1);
  const Examples test = SeparableData(dim, 4, 500, 2);
  const Dataset data = Dataset::FromF32(ExampleShape{dim, 1, 1}, 4, train.x, train.y);
  std::vector<uint32_t> rows(train.n());
  std::iota(rows.begin(), rows.end(), 0u);
  auto model = std::move(NewModel(VectorModel(Kind::kMlp, dim, 4, {32})).value());
  std::vector<float> base(model->NumParams());
  model->Init(1, base);
  const AttackOptions attack{.eps = 0.1, .step_size = 0.025, .steps = 7};
  const LocalSchedule schedule{.epochs = 4, .batch_size = 20};
  const SgdOptions sgd{.lr = 0.05, .momentum = 0.9};

  auto train_with = [&](std::unique_ptr<Objective> objective) {
    auto opt = std::move(NewSgdOptimizer(sgd, model->NumParams(), std::move(objective)).value());
    auto r = TrainLocal(*model, base, data, rows, schedule, *opt, nullptr, 7);
    EXPECT_TRUE(r.ok()) << r.status();
    std::vector<float> p = base;
    for (size_t i = 0; i < p.size(); ++i) p[i] += r->delta[i];
    return p;
  };
  auto robust_accuracy = [&](const std::vector<float>& p) {
    std::vector<float> adv(test.x.size());
    Rng rng(3, "eval");
    AttackOptions eval = attack;
    eval.steps = 20;
    std::move(NewAttack(eval).value())->Perturb(*model, p, test.view(), rng, adv);
    return Accuracy(*model, p, BatchView{adv.data(), test.y.data(), test.n()});
  };

  const std::vector<float> clean = train_with(nullptr);
  const std::vector<float> robust =
      train_with(std::move(NewTradesObjective(TradesOptions{.attack = attack, .beta = 6}).value()));
  const double clean_acc = Accuracy(*model, clean, test.view());
  const double trades_clean_acc = Accuracy(*model, robust, test.view());
  const double clean_rob = robust_accuracy(clean);
  const double trades_rob = robust_accuracy(robust);
  EXPECT_GT(clean_acc, 0.97);
  EXPECT_GT(trades_clean_acc, clean_acc - 0.1);
  EXPECT_GT(trades_rob, clean_rob + 0.2)
      << "robust accuracy: clean training " << clean_rob << ", TRADES " << trades_rob;
}

}  // namespace
}  // namespace fedsim
