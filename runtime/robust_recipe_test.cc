#include "runtime/robust_recipe.h"

#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "google/protobuf/text_format.h"
#include "gtest/gtest.h"

namespace fedsim {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;

config::Robust Robust(const std::string& text) {
  config::Evaluation eval;
  EXPECT_TRUE(google::protobuf::TextFormat::ParseFromString("robust {" + text + "}", &eval))
      << text;
  return eval.robust();
}

std::string PlanName(const std::string& text, uint64_t seed = 1) {
  return RobustEvalPlanName(RobustEvalFromConfig(Robust(text), seed));
}

TEST(RobustRecipeTest, DefaultsPerAttack) {
  EXPECT_EQ(PlanName(""),
            "pgd(linf, eps=0.1, step=0.01, k=20, start=random) on 1000 test examples (seed 1)");
  EXPECT_EQ(PlanName("attack: FGSM eps: 0.2", 3),
            "fgsm(linf, eps=0.2, step=0.2, start=clean) on 1000 test examples (seed 3)");
  EXPECT_EQ(Robust("").GetDescriptor()->FindFieldByName("steps")->has_default_value(), false);
  EXPECT_EQ(config::Evaluation::descriptor()->FindFieldByName("robust")->number(), 5);
}

// Every field reaches the plan (ALGORITHMS.md section 7: attack settings
// silently not passed through are a known pitfall of public code).
TEST(RobustRecipeTest, EveryFieldReachesThePlan) {
  const RobustEvalPlan plan = RobustEvalFromConfig(
      Robust("attack: PGD norm: L2 eps: 1.5 step_size: 0.3 steps: 7 random_start: false "
             "examples: 250 fgsm: true clip_min: -1 clip_max: 2"),
      9);
  const AttackOptions& a = plan.options.attack;
  EXPECT_EQ(a.kind, AttackKind::kPgd);
  EXPECT_EQ(a.norm, AttackNorm::kL2);
  EXPECT_EQ(a.eps, 1.5);
  EXPECT_EQ(a.step_size, 0.3);
  EXPECT_EQ(a.steps, 7);
  EXPECT_FALSE(a.random_start);
  EXPECT_EQ(a.clip_min, -1.0f);
  EXPECT_EQ(a.clip_max, 2.0f);
  EXPECT_TRUE(plan.options.fgsm);
  EXPECT_EQ(plan.examples, 250u);
  EXPECT_EQ(plan.seed, 9u);
  EXPECT_EQ(RobustEvalPlanName(plan),
            "pgd(l2, eps=1.5, step=0.3, k=7, start=clean, range=[-1, 2]) on 250 test examples "
            "(seed 9), fgsm(l2, eps=1.5, step=1.5, start=clean, range=[-1, 2])");
}

TEST(RobustRecipeTest, ValidateNamesEachBadField) {
  auto problems_of = [](const std::string& text) {
    ProblemList p;
    ValidateRobust(Robust(text), "eval.robust", &p);
    std::vector<std::string> paths;
    for (const auto& problem : p.problems()) paths.push_back(problem.path);
    return paths;
  };
  EXPECT_THAT(problems_of(""), IsEmpty());
  EXPECT_THAT(problems_of("attack: FGSM fgsm: true examples: 0"), IsEmpty());
  EXPECT_THAT(problems_of("eps: 0"), ElementsAre("eval.robust.eps"));
  EXPECT_THAT(problems_of("eps: -1"), ElementsAre("eval.robust.eps"));
  EXPECT_THAT(problems_of("step_size: 0"), ElementsAre("eval.robust.step_size"));
  EXPECT_THAT(problems_of("steps: 0"), ElementsAre("eval.robust.steps"));
  EXPECT_THAT(problems_of("attack: FGSM steps: 20"), ElementsAre("eval.robust.steps"));
  EXPECT_THAT(problems_of("clip_min: 1 clip_max: 1"), ElementsAre("eval.robust.clip_min"));
  EXPECT_THAT(problems_of("attack: ATTACK_UNSPECIFIED norm: NORM_UNSPECIFIED"),
              ElementsAre("eval.robust.attack", "eval.robust.norm"));
  ProblemList p;
  ValidateRobust(Robust("eps: 0"), "eval.robust", &p);
  ASSERT_EQ(p.size(), 1u);
  EXPECT_THAT(p.problems()[0].message, HasSubstr("measures the test accuracy again"));
}

}  // namespace
}  // namespace fedsim
