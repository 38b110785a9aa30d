#include "runtime/local_recipe.h"

#include <cmath>

#include "absl/strings/str_cat.h"

namespace fedsim {
namespace {

SgdOptions SgdFromConfig(const config::LocalTraining& local) {
  return SgdOptions{.lr = local.lr(),
                    .momentum = local.momentum(),
                    .weight_decay = local.weight_decay(),
                    .prox_mu = local.prox_mu()};
}

// Default step counts (steps, step_size, random_start have no declared
// default in the schema: see config::Adversarial).
constexpr uint32_t kPgdDefaultSteps = 10;
constexpr double kPgdDefaultStepSize = 0.01;

}  // namespace

LocalSchedule ScheduleFromConfig(const config::LocalTraining& local) {
  return LocalSchedule{
      .epochs = local.epochs(), .steps = local.steps(), .batch_size = local.batch_size()};
}

AdversarialOptions AdversarialFromConfig(const config::Adversarial& adv) {
  const bool fgsm = adv.attack() == config::Adversarial::FGSM;
  AttackOptions attack{
      .kind = fgsm ? AttackKind::kFgsm : AttackKind::kPgd,
      .norm = adv.norm() == config::Adversarial::L2 ? AttackNorm::kL2 : AttackNorm::kLinf,
      .eps = adv.eps(),
      .step_size = adv.has_step_size() ? adv.step_size()
                   : fgsm              ? adv.eps()
                                       : kPgdDefaultStepSize,
      .steps = static_cast<int>(adv.has_steps() ? adv.steps()
                                : fgsm          ? 1
                                                : kPgdDefaultSteps),
      .random_start = adv.has_random_start() ? adv.random_start() : !fgsm,
      .clip_min = static_cast<float>(adv.clip_min()),
      .clip_max = static_cast<float>(adv.clip_max())};
  return AdversarialOptions{.attack = attack,
                            .ratio = adv.ratio(),
                            .mode = adv.mode() == config::Adversarial::CONCAT
                                        ? AdversarialMode::kConcat
                                        : AdversarialMode::kReplace};
}

void ValidateAdversarial(const config::Adversarial& adv, const std::string& path,
                         ProblemList* problems) {
  auto add = [&](const char* field, std::string message) {
    problems->Add(absl::StrCat(path, ".", field), std::move(message));
  };
  if (adv.attack() == config::Adversarial::ATTACK_UNSPECIFIED) {
    add("attack", "is unspecified; set attack: PGD or attack: FGSM");
  }
  if (adv.norm() == config::Adversarial::NORM_UNSPECIFIED) {
    add("norm", "is unspecified; set norm: LINF or norm: L2");
  }
  if (adv.mode() == config::Adversarial::MODE_UNSPECIFIED) {
    add("mode", "is unspecified; set mode: REPLACE or mode: CONCAT");
  }
  if (!std::isfinite(adv.eps()) || adv.eps() < 0) {
    add("eps", absl::StrCat(adv.eps(), " is not a radius; use a finite eps > 0, e.g. 0.1"));
  } else if (adv.eps() == 0) {
    add("eps",
        "0 attacks nothing but still costs the attack's passes; set eps > 0 (e.g. 0.1) "
        "or remove adversarial {} to train on clean batches");
  }
  const AdversarialOptions o = AdversarialFromConfig(adv);
  if (!std::isfinite(o.attack.step_size) || !(o.attack.step_size > 0)) {
    add("step_size", absl::StrCat(o.attack.step_size, " must be finite and > 0, e.g. 0.01"));
  }
  if (adv.has_steps() && adv.steps() == 0) {
    add("steps", "must be >= 1, got 0; PGD typically takes 7 to 20");
  }
  if (adv.attack() == config::Adversarial::FGSM && adv.has_steps() && adv.steps() != 1) {
    add("steps", absl::StrCat("FGSM takes exactly one step, got ", adv.steps(),
                              "; remove steps or use attack: PGD"));
  }
  if (!(adv.ratio() > 0 && adv.ratio() <= 1)) {
    add("ratio", absl::StrCat(adv.ratio(),
                              " is outside (0, 1]; it is the attacked share of each batch, "
                              "1 = every row (Madry), 0.5 = half (FAT)"));
  }
  if (std::isnan(adv.clip_min()) || std::isnan(adv.clip_max()) ||
      !(adv.clip_min() < adv.clip_max())) {
    add("clip_min", absl::StrCat("the valid range [", adv.clip_min(), ", ", adv.clip_max(),
                                 "] is empty; use [0, 1] for pixels, [-inf, inf] for "
                                 "unbounded features"));
  }
}

absl::StatusOr<LocalRecipe> NewLocalRecipe(const config::LocalTraining& local,
                                           size_t num_params) {
  LocalRecipe recipe;
  recipe.schedule = ScheduleFromConfig(local);
  absl::StatusOr<std::unique_ptr<Optimizer>> optimizer =
      local.has_sam()
          ? NewSamOptimizer(SamOptions{.rho = local.sam().rho()}, SgdFromConfig(local), num_params)
          : NewSgdOptimizer(SgdFromConfig(local), num_params);
  if (!optimizer.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("local: ", optimizer.status().message()));
  }
  recipe.optimizer = *std::move(optimizer);
  if (local.has_adversarial()) {
    ProblemList problems;
    ValidateAdversarial(local.adversarial(), "local.adversarial", &problems);
    if (!problems.empty()) return problems.ToStatus();
    absl::StatusOr<std::unique_ptr<BatchTransform>> transform =
        NewAdversarialTransform(AdversarialFromConfig(local.adversarial()));
    if (!transform.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat("local.adversarial: ", transform.status().message()));
    }
    recipe.transform = *std::move(transform);
  }
  return recipe;
}

double ComputeCostMultiplier(const config::LocalTraining& local) {
  const int passes = local.has_sam() ? 2 : 1;
  if (!local.has_adversarial()) return passes;
  return AdversarialCostMultiplier(AdversarialFromConfig(local.adversarial()), passes);
}

}  // namespace fedsim
