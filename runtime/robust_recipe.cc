#include "runtime/robust_recipe.h"

#include "runtime/attack_fields.h"

namespace fedsim {
namespace {

// PGD-20: the usual evaluation attack, more steps than training's
// (ALGORITHMS.md section 7).
constexpr uint32_t kPgdDefaultSteps = 20;

}  // namespace

RobustEvalPlan RobustEvalFromConfig(const config::Robust& robust, uint64_t seed) {
  RobustEvalPlan plan;
  plan.options.attack = attack_fields::ToOptions(robust, kPgdDefaultSteps);
  plan.options.fgsm = robust.fgsm();
  plan.examples = robust.examples();
  plan.seed = seed;
  return plan;
}

void ValidateRobust(const config::Robust& robust, const std::string& path,
                    ProblemList* problems) {
  attack_fields::Validate(robust, kPgdDefaultSteps, path,
                          "0 measures the test accuracy again at the attack's cost; set eps > 0 "
                          "(e.g. 0.1, the training attack's eps) or remove robust {}",
                          problems);
}

}  // namespace fedsim
