#include "ml/adversarial.h"

#include <cmath>
#include <memory>
#include <numeric>
#include <vector>

#include "data/dataset.h"
#include "gtest/gtest.h"
#include "ml/attack_test_util.h"
#include "ml/local_trainer.h"
#include "ml/optimizer.h"

namespace fedsim {
namespace {

using testing::Accuracy;
using testing::Examples;
using testing::SeparableData;
using testing::VectorModel;
using Kind = ModelConfig::Kind;

std::unique_ptr<BatchTransform> MustTransform(const AdversarialOptions& o) {
  auto t = NewAdversarialTransform(o);
  EXPECT_TRUE(t.ok()) << t.status();
  return std::move(t).value();
}

class AdversarialTest : public ::testing::Test {
 protected:
  void SetUp() override {
    model_ = std::move(NewModel(VectorModel(Kind::kMlp, 16, 3)).value());
    params_.resize(model_->NumParams());
    model_->Init(4, params_);
    batch_ = SeparableData(16, 3, 10, 5);
  }

  bool RowEquals(const BatchView& v, int row, const Examples& e, int erow) const {
    return std::equal(v.x + row * e.dim, v.x + (row + 1) * e.dim, e.x.begin() + erow * e.dim);
  }

  double RowLinf(const BatchView& v, int row, const Examples& e, int erow) const {
    double d = 0.0;
    for (int j = 0; j < e.dim; ++j) {
      d = std::max(d, std::abs(static_cast<double>(v.x[row * e.dim + j]) - e.x[erow * e.dim + j]));
    }
    return d;
  }

  std::unique_ptr<Model> model_;
  std::vector<float> params_;
  Examples batch_;
};

TEST_F(AdversarialTest, ReplaceAllIsTheConfiguredAttackOnEveryRow) {
  const AttackOptions attack{.eps = 0.07, .step_size = 0.02, .steps = 4};
  auto t = MustTransform(AdversarialOptions{.attack = attack});
  Rng rng(3, "transform", 0);
  const BatchView out = t->Apply(*model_, params_, batch_.view(), rng);
  ASSERT_EQ(out.n, batch_.n());
  // The same attack on the same stream gives the same rows, bit for bit.
  std::vector<float> want(batch_.x.size());
  Rng rng2(3, "transform", 0);
  std::move(NewAttack(attack).value())->Perturb(*model_, params_, batch_.view(), rng2, want);
  EXPECT_TRUE(std::equal(want.begin(), want.end(), out.x));
  EXPECT_TRUE(std::equal(batch_.y.begin(), batch_.y.end(), out.y));
  EXPECT_EQ(t->passes_per_step(), 4);
}

TEST_F(AdversarialTest, ReplaceHalfChangesExactlyTheChosenRows) {
  auto t = MustTransform(AdversarialOptions{.attack = {.eps = 0.05}, .ratio = 0.5});
  for (uint64_t step = 0; step < 20; ++step) {
    Rng rng(1, "transform", step);
    const BatchView out = t->Apply(*model_, params_, batch_.view(), rng);
    ASSERT_EQ(out.n, 10);
    int changed = 0;
    for (int r = 0; r < 10; ++r) {
      EXPECT_EQ(out.y[r], batch_.y[r]);
      EXPECT_LE(RowLinf(out, r, batch_, r), 0.05);
      changed += !RowEquals(out, r, batch_, r);
    }
    EXPECT_EQ(changed, 5) << "step " << step;  // 0.5 * 10 has no fraction
  }
}

TEST_F(AdversarialTest, ConcatAppendsAttackedCopiesOfChosenRows) {
  auto t = MustTransform(
      AdversarialOptions{.attack = {.eps = 0.05}, .ratio = 0.3, .mode = AdversarialMode::kConcat});
  Rng rng(2, "transform", 0);
  const BatchView out = t->Apply(*model_, params_, batch_.view(), rng);
  ASSERT_EQ(out.n, 13);
  for (int r = 0; r < 10; ++r) {
    EXPECT_TRUE(RowEquals(out, r, batch_, r));
    EXPECT_EQ(out.y[r], batch_.y[r]);
  }
  // Each appended row is an attacked copy of a distinct clean row with its label.
  std::vector<bool> used(10, false);
  for (int a = 10; a < 13; ++a) {
    int match = -1;
    for (int r = 0; r < 10; ++r) {
      if (!used[r] && out.y[a] == batch_.y[r] && RowLinf(out, a, batch_, r) <= 0.05 &&
          !RowEquals(out, a, batch_, r)) {
        match = r;
        break;
      }
    }
    ASSERT_GE(match, 0) << "appended row " << a << " is no attacked copy of a clean row";
    used[match] = true;
  }
}

TEST_F(AdversarialTest, AttackedShareIsRatioInExpectation) {
  // 0.3 * 5 = 1.5 rows: one or two, half the time each.
  auto t = MustTransform(AdversarialOptions{
      .attack = Fgsm(AttackNorm::kLinf, 0.05), .ratio = 0.3, .mode = AdversarialMode::kConcat});
  const BatchView five = batch_.rows(0, 5);
  double sum = 0.0;
  const int trials = 2000;
  for (int s = 0; s < trials; ++s) {
    Rng rng(4, "transform", s);
    const int m = t->Apply(*model_, params_, five, rng).n - 5;
    ASSERT_TRUE(m == 1 || m == 2) << m;
    sum += m;
  }
  EXPECT_NEAR(sum / trials, 1.5, 0.05);
  EXPECT_EQ(t->passes_per_step(), 1);
}

TEST_F(AdversarialTest, DeterministicFromTheRng) {
  auto t1 = MustTransform(AdversarialOptions{.attack = {}, .ratio = 0.5});
  auto t2 = MustTransform(AdversarialOptions{.attack = {}, .ratio = 0.5});
  auto run = [&](BatchTransform& t, uint64_t key) {
    Rng rng(key, "transform");
    const BatchView v = t.Apply(*model_, params_, batch_.view(), rng);
    return std::vector<float>(v.x, v.x + static_cast<size_t>(v.n) * batch_.dim);
  };
  EXPECT_EQ(run(*t1, 9), run(*t2, 9));
  EXPECT_NE(run(*t1, 9), run(*t1, 10));
}

TEST(AdversarialOptionsTest, NamesValidationAndCost) {
  EXPECT_EQ(AdversarialName(
                AdversarialOptions{.attack = {}, .ratio = 0.5, .mode = AdversarialMode::kConcat}),
            "adversarial(pgd(linf, eps=0.1, step=0.01, k=10, start=random), ratio=0.5, concat)");
  for (double bad : {0.0, -0.5, 1.5, std::nan("")}) {
    auto t = NewAdversarialTransform(AdversarialOptions{.attack = {}, .ratio = bad});
    ASSERT_FALSE(t.ok()) << bad;
    EXPECT_NE(t.status().message().find("ratio"), std::string::npos) << t.status();
  }
  EXPECT_FALSE(NewAdversarialTransform(AdversarialOptions{.attack = {.steps = 0}}).ok());
  // PGD-k on the whole batch: k + 1 passes under SGD, k + 2 under SAM.
  EXPECT_EQ(AdversarialCostMultiplier(AdversarialOptions{}, 1), 11.0);
  EXPECT_EQ(AdversarialCostMultiplier(AdversarialOptions{}, 2), 12.0);
  EXPECT_EQ(AdversarialCostMultiplier(AdversarialOptions{.attack = Fgsm(AttackNorm::kL2, 1)}, 1),
            2.0);
  // FAT mix: half the batch attacked 10 times, 1.5 batches trained on.
  EXPECT_EQ(
      AdversarialCostMultiplier(
          AdversarialOptions{.attack = {}, .ratio = 0.5, .mode = AdversarialMode::kConcat}, 1),
      6.5);
  EXPECT_EQ(AdversarialCostMultiplier(AdversarialOptions{.attack = {}, .ratio = 0.5}, 1), 6.0);
}

// The composition end to end: TrainLocal with the transform yields a model
// that resists the attack it was trained against far better than one
// trained on clean batches, at a small cost in clean accuracy.
TEST(AdversarialTrainingTest, MakesTheModelRobust) {
  const int dim = 20;
  const Examples train = SeparableData(dim, 4, 3000, 1);
  const Examples test = SeparableData(dim, 4, 500, 2);
  const Dataset data = Dataset::FromF32(ExampleShape{dim, 1, 1}, 4, train.x, train.y);
  std::vector<uint32_t> rows(train.n());
  std::iota(rows.begin(), rows.end(), 0u);
  auto model = std::move(NewModel(VectorModel(Kind::kMlp, dim, 4, {32})).value());
  std::vector<float> base(model->NumParams());
  model->Init(1, base);
  const AttackOptions attack{.eps = 0.1, .step_size = 0.025, .steps = 7};
  const LocalSchedule schedule{.epochs = 4, .batch_size = 20};

  auto train_with = [&](BatchTransform* transform) {
    auto opt = std::move(
        NewSgdOptimizer(SgdOptions{.lr = 0.05, .momentum = 0.9}, model->NumParams()).value());
    auto r = TrainLocal(*model, base, data, rows, schedule, *opt, transform, 7);
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
  auto transform = MustTransform(AdversarialOptions{.attack = attack});
  const std::vector<float> robust = train_with(transform.get());
  const double clean_acc = Accuracy(*model, clean, test.view());
  const double robust_clean_acc = Accuracy(*model, robust, test.view());
  const double clean_rob = robust_accuracy(clean);
  const double robust_rob = robust_accuracy(robust);
  EXPECT_GT(clean_acc, 0.97);
  EXPECT_GT(robust_clean_acc, clean_acc - 0.1);
  EXPECT_GT(robust_rob, clean_rob + 0.2)
      << "robust accuracy: clean training " << clean_rob << ", adversarial " << robust_rob;
}

}  // namespace
}  // namespace fedsim
