#include "runtime/local_recipe.h"

#include <cmath>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "google/protobuf/text_format.h"
#include "gtest/gtest.h"
#include "ml/model.h"
#include "util/rng.h"

namespace fedsim {
namespace {

using ::testing::HasSubstr;

config::LocalTraining Local(const std::string& text) {
  config::LocalTraining local;
  EXPECT_TRUE(google::protobuf::TextFormat::ParseFromString(text, &local)) << text;
  return local;
}

std::string TransformName(const std::string& text) {
  auto recipe = NewLocalRecipe(Local(text), 100);
  EXPECT_TRUE(recipe.ok()) << recipe.status();
  if (!recipe.ok() || recipe->transform == nullptr) return "none";
  return recipe->transform->Name();
}

TEST(LocalRecipeTest, NoAdversarialNoTransform) {
  auto recipe = NewLocalRecipe(Local("lr: 0.05"), 100);
  ASSERT_TRUE(recipe.ok()) << recipe.status();
  EXPECT_EQ(recipe->transform, nullptr);
  EXPECT_EQ(ComputeCostMultiplier(Local("")), 1.0);
  EXPECT_EQ(ComputeCostMultiplier(Local("sam {}")), 2.0);
}

TEST(LocalRecipeTest, AdversarialDefaultsPerAttack) {
  EXPECT_EQ(TransformName("adversarial {}"),
            "adversarial(pgd(linf, eps=0.1, step=0.01, k=10, start=random), ratio=1, replace)");
  EXPECT_EQ(TransformName("adversarial { attack: FGSM }"),
            "adversarial(fgsm(linf, eps=0.1, step=0.1, start=clean), ratio=1, replace)");
  EXPECT_EQ(TransformName("adversarial { attack: FGSM eps: 0.2 }"),
            "adversarial(fgsm(linf, eps=0.2, step=0.2, start=clean), ratio=1, replace)");
  // Wong et al.'s fast adversarial training: FGSM from a random start.
  EXPECT_EQ(TransformName("adversarial { attack: FGSM random_start: true step_size: 0.125 }"),
            "adversarial(fgsm(linf, eps=0.1, step=0.125, start=random), ratio=1, replace)");
  // PGD-k on every row costs k + 1 passes under SGD, k + 2 under SAM.
  EXPECT_EQ(ComputeCostMultiplier(Local("adversarial {}")), 11.0);
  EXPECT_EQ(ComputeCostMultiplier(Local("sam {} adversarial {}")), 12.0);
  EXPECT_EQ(ComputeCostMultiplier(Local("adversarial { attack: FGSM }")), 2.0);
  EXPECT_EQ(ComputeCostMultiplier(Local("adversarial { steps: 7 }")), 8.0);
}

// The config layer fills every declared default before validation; the
// attack-dependent ones must stay unset so that FGSM can tell them apart.
TEST(LocalRecipeTest, AttackDependentFieldsHaveNoDeclaredDefault) {
  const auto* d = config::Adversarial::descriptor();
  for (const char* name : {"steps", "step_size", "random_start"}) {
    ASSERT_NE(d->FindFieldByName(name), nullptr) << name;
    EXPECT_FALSE(d->FindFieldByName(name)->has_default_value()) << name;
  }
  EXPECT_EQ(d->FindFieldByName("eps")->default_value_double(), 0.1);
  EXPECT_EQ(config::LocalTraining::descriptor()->FindFieldByName("adversarial")->number(), 9);
}

TEST(LocalRecipeTest, EveryFieldReachesTheTransform) {
  const std::string text =
      "sam { rho: 0.1 } adversarial { attack: PGD norm: L2 eps: 1.5 step_size: 0.3 steps: 7 "
      "random_start: false ratio: 0.5 mode: CONCAT clip_min: -1 clip_max: 2 }";
  EXPECT_EQ(TransformName(text),
            "adversarial(pgd(l2, eps=1.5, step=0.3, k=7, start=clean, range=[-1, 2]), "
            "ratio=0.5, concat)");
  auto recipe = NewLocalRecipe(Local(text), 100);
  ASSERT_TRUE(recipe.ok());
  EXPECT_EQ(recipe->transform->passes_per_step(), 7);
  // SAM's 2 passes over 1.5 batches, 7 attack passes over half a batch.
  EXPECT_EQ(ComputeCostMultiplier(Local(text)), 2 * 1.5 + 7 * 0.5);
}

// Beyond names: the transform the recipe builds moves inputs as configured.
TEST(LocalRecipeTest, ConfiguredAttackMovesTheInputs) {
  ModelConfig mc;
  mc.kind = ModelConfig::Kind::kSoftmax;
  mc.input_channels = 8;
  mc.input_height = 1;
  mc.input_width = 1;
  mc.num_classes = 3;
  auto model = std::move(NewModel(mc).value());
  std::vector<float> params(model->NumParams());
  model->Init(1, params);
  std::vector<float> x(4 * 8);
  Rng data(2, "x");
  for (float& v : x) v = static_cast<float>(data.Uniform(0.3, 0.7));
  const std::vector<int32_t> y = {0, 1, 2, 0};
  const BatchView batch{x.data(), y.data(), 4};

  auto deltas = [&](const std::string& text, uint64_t key) {
    auto recipe = NewLocalRecipe(Local(text), model->NumParams());
    EXPECT_TRUE(recipe.ok()) << recipe.status();
    Rng rng(key, "transform");
    const BatchView out = recipe->transform->Apply(*model, params, batch, rng);
    std::vector<double> d;
    for (size_t i = 0; i < x.size(); ++i) d.push_back(std::abs(double{out.x[i]} - x[i]));
    return d;
  };
  // One step of 0.013 from the clean input in a larger ball.
  for (double d :
       deltas("adversarial { eps: 0.2 step_size: 0.013 steps: 1 random_start: false }", 1)) {
    EXPECT_NEAR(d, 0.013, 1e-6);
  }
  // Five steps of 0.02 saturate a ball of 0.03.
  for (double d :
       deltas("adversarial { eps: 0.03 step_size: 0.02 steps: 5 random_start: false }", 1)) {
    EXPECT_NEAR(d, 0.03, 1e-6);
  }
  // random_start: false ignores the stream; the default uses it.
  EXPECT_EQ(deltas("adversarial { random_start: false }", 1),
            deltas("adversarial { random_start: false }", 2));
  EXPECT_NE(deltas("adversarial {}", 1), deltas("adversarial {}", 2));
}

TEST(LocalRecipeTest, ValidateAdversarialNamesEachBadField) {
  auto problems_of = [](const std::string& text) {
    ProblemList p;
    ValidateAdversarial(Local("adversarial {" + text + "}").adversarial(), "local.adversarial", &p);
    std::vector<std::string> paths;
    for (const auto& problem : p.problems()) paths.push_back(problem.path);
    return paths;
  };
  EXPECT_THAT(problems_of(""), ::testing::IsEmpty());
  EXPECT_THAT(problems_of("attack: FGSM norm: L2 eps: 2 ratio: 0.5 mode: CONCAT"),
              ::testing::IsEmpty());
  EXPECT_THAT(problems_of("eps: -0.1"), ::testing::ElementsAre("local.adversarial.eps"));
  EXPECT_THAT(problems_of("eps: 0"), ::testing::ElementsAre("local.adversarial.eps"));
  EXPECT_THAT(problems_of("eps: inf"), ::testing::ElementsAre("local.adversarial.eps"));
  EXPECT_THAT(problems_of("step_size: 0"), ::testing::ElementsAre("local.adversarial.step_size"));
  EXPECT_THAT(problems_of("steps: 0"), ::testing::ElementsAre("local.adversarial.steps"));
  EXPECT_THAT(problems_of("attack: FGSM steps: 10"),
              ::testing::ElementsAre("local.adversarial.steps"));
  EXPECT_THAT(problems_of("attack: FGSM steps: 1"), ::testing::IsEmpty());
  EXPECT_THAT(problems_of("ratio: 0"), ::testing::ElementsAre("local.adversarial.ratio"));
  EXPECT_THAT(problems_of("ratio: 1.5"), ::testing::ElementsAre("local.adversarial.ratio"));
  EXPECT_THAT(problems_of("clip_min: 1 clip_max: 0"),
              ::testing::ElementsAre("local.adversarial.clip_min"));
  EXPECT_THAT(problems_of("clip_min: -inf clip_max: inf"), ::testing::IsEmpty());
  EXPECT_THAT(problems_of("attack: ATTACK_UNSPECIFIED norm: NORM_UNSPECIFIED"),
              ::testing::ElementsAre("local.adversarial.attack", "local.adversarial.norm"));

  ProblemList p;
  ValidateAdversarial(Local("adversarial { attack: FGSM steps: 10 }").adversarial(), "x", &p);
  ASSERT_EQ(p.size(), 1u);
  EXPECT_THAT(p.problems()[0].message, HasSubstr("FGSM takes exactly one step"));

  auto bad = NewLocalRecipe(Local("adversarial { ratio: 2 }"), 100);
  ASSERT_FALSE(bad.ok());
  EXPECT_EQ(bad.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(bad.status().message(), HasSubstr("local.adversarial.ratio"));
}

// trades_beta makes the optimizer's objective TRADES with the configured
// attack, and no batch transform.
TEST(LocalRecipeTest, TradesBetaBuildsTheTradesObjective) {
  const std::string text =
      "lr: 0.05 adversarial { eps: 0.2 step_size: 0.05 steps: 4 clip_min: -1 trades_beta: 3 }";
  auto recipe = NewLocalRecipe(Local(text), 100);
  ASSERT_TRUE(recipe.ok()) << recipe.status();
  EXPECT_EQ(recipe->transform, nullptr);
  EXPECT_EQ(recipe->optimizer->Name(),
            "sgd(lr=0.05) on trades(beta=3, pgd(linf, eps=0.2, step=0.05, k=4, start=random, "
            "range=[-1, 1]))");
  // PGD-k inside TRADES: k + 2 passes, twice that under SAM; the optimizer
  // and the device model agree.
  EXPECT_EQ(recipe->optimizer->passes_per_step(), 6);
  EXPECT_EQ(ComputeCostMultiplier(Local(text)), 6.0);
  EXPECT_EQ(ComputeCostMultiplier(Local("sam {} " + text)), 12.0);
  EXPECT_EQ(ComputeCostMultiplier(Local("adversarial { trades_beta: 6 }")), 12.0);
  auto sam = NewLocalRecipe(Local("sam {} " + text), 100);
  ASSERT_TRUE(sam.ok());
  EXPECT_EQ(sam->optimizer->passes_per_step(), 12);
  EXPECT_EQ(TradesFromConfig(Local(text).adversarial()).beta, 3.0);
  EXPECT_EQ(config::Adversarial::descriptor()->FindFieldByName("trades_beta")->number(), 11);
  EXPECT_FALSE(config::Adversarial::descriptor()->FindFieldByName("trades_beta")->has_default_value());
}

TEST(LocalRecipeTest, ValidateAdversarialRefusesWhatTradesWouldNotUse) {
  auto problems_of = [](const std::string& text) {
    ProblemList p;
    ValidateAdversarial(Local("adversarial {" + text + "}").adversarial(), "local.adversarial", &p);
    std::vector<std::string> paths;
    for (const auto& problem : p.problems()) paths.push_back(problem.path);
    return paths;
  };
  EXPECT_THAT(problems_of("trades_beta: 6"), ::testing::IsEmpty());
  EXPECT_THAT(problems_of("attack: FGSM random_start: true trades_beta: 1"), ::testing::IsEmpty());
  EXPECT_THAT(problems_of("trades_beta: 0"), ::testing::ElementsAre("local.adversarial.trades_beta"));
  EXPECT_THAT(problems_of("trades_beta: -1"),
              ::testing::ElementsAre("local.adversarial.trades_beta"));
  EXPECT_THAT(problems_of("trades_beta: nan"),
              ::testing::ElementsAre("local.adversarial.trades_beta"));
  EXPECT_THAT(problems_of("trades_beta: 6 ratio: 0.5"),
              ::testing::ElementsAre("local.adversarial.ratio"));
  EXPECT_THAT(problems_of("trades_beta: 6 mode: CONCAT"),
              ::testing::ElementsAre("local.adversarial.mode"));
  EXPECT_THAT(problems_of("trades_beta: 6 random_start: false"),
              ::testing::ElementsAre("local.adversarial.random_start"));
  // FGSM starts from the clean input unless told otherwise.
  EXPECT_THAT(problems_of("attack: FGSM trades_beta: 6"),
              ::testing::ElementsAre("local.adversarial.random_start"));
  auto bad = NewLocalRecipe(Local("adversarial { trades_beta: 6 ratio: 0.5 }"), 100);
  ASSERT_FALSE(bad.ok());
  EXPECT_THAT(bad.status().message(), HasSubstr("does not apply to TRADES"));
}

}  // namespace
}  // namespace fedsim
