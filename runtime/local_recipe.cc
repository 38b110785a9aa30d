#include "runtime/local_recipe.h"

#include <cmath>

#include "absl/strings/str_cat.h"
#include "runtime/attack_fields.h"

namespace fedsim {
namespace {

SgdOptions SgdFromConfig(const config::LocalTraining& local) {
  return SgdOptions{.lr = local.lr(),
                    .momentum = local.momentum(),
                    .weight_decay = local.weight_decay(),
                    .prox_mu = local.prox_mu()};
}

// PGD's default number of steps in training (config::Adversarial.steps).
constexpr uint32_t kPgdDefaultSteps = 10;

bool IsTrades(const config::LocalTraining& local) {
  return local.has_adversarial() && local.adversarial().has_trades_beta();
}

}  // namespace

LocalSchedule ScheduleFromConfig(const config::LocalTraining& local) {
  return LocalSchedule{
      .epochs = local.epochs(), .steps = local.steps(), .batch_size = local.batch_size()};
}

std::optional<BatchedRecipe> BatchedRecipeFor(const config::LocalTraining& local) {
  if (local.has_adversarial()) return std::nullopt;
  BatchedRecipe r;
  r.schedule = ScheduleFromConfig(local);
  r.sgd = SgdFromConfig(local);
  if (local.has_sam()) r.sam_rho = local.sam().rho();
  return r;
}

AdversarialOptions AdversarialFromConfig(const config::Adversarial& adv) {
  return AdversarialOptions{.attack = attack_fields::ToOptions(adv, kPgdDefaultSteps),
                            .ratio = adv.ratio(),
                            .mode = adv.mode() == config::Adversarial::CONCAT
                                        ? AdversarialMode::kConcat
                                        : AdversarialMode::kReplace};
}

TradesOptions TradesFromConfig(const config::Adversarial& adv) {
  return TradesOptions{.attack = attack_fields::ToOptions(adv, kPgdDefaultSteps),
                       .beta = adv.trades_beta()};
}

void ValidateAdversarial(const config::Adversarial& adv, const std::string& path,
                         ProblemList* problems) {
  auto add = [&](const char* field, std::string message) {
    problems->Add(absl::StrCat(path, ".", field), std::move(message));
  };
  attack_fields::Validate(
      adv, kPgdDefaultSteps, path,
      "0 attacks nothing but still costs the attack's passes; set eps > 0 (e.g. 0.1) "
      "or remove adversarial {} to train on clean batches",
      problems);
  if (adv.mode() == config::Adversarial::MODE_UNSPECIFIED) {
    add("mode", "is unspecified; set mode: REPLACE or mode: CONCAT");
  }
  if (!(adv.ratio() > 0 && adv.ratio() <= 1)) {
    add("ratio", absl::StrCat(adv.ratio(),
                              " is outside (0, 1]; it is the attacked share of each batch, "
                              "1 = every row (Madry), 0.5 = half (FAT)"));
  }
  if (!adv.has_trades_beta()) return;
  // TRADES reads the attack fields but neither ratio nor mode: refuse values
  // that would silently not apply.
  if (!std::isfinite(adv.trades_beta()) || !(adv.trades_beta() >= 0)) {
    add("trades_beta",
        absl::StrCat(adv.trades_beta(), " must be finite and > 0; the paper uses 1 to 6"));
  } else if (adv.trades_beta() == 0) {
    add("trades_beta",
        "0 trains on the clean loss only while paying for the attack; set e.g. 6, or remove "
        "trades_beta for training on attacked examples (Madry)");
  }
  if (adv.ratio() != 1) {
    add("ratio", absl::StrCat(adv.ratio(),
                              " does not apply to TRADES, which attacks every row; remove "
                              "ratio or trades_beta"));
  }
  if (adv.mode() == config::Adversarial::CONCAT) {
    add("mode",
        "CONCAT does not apply to TRADES, which trains on every clean row and its "
        "attacked copy; remove mode or trades_beta");
  }
  if (!attack_fields::ToOptions(adv, kPgdDefaultSteps).random_start) {
    add("random_start",
        "TRADES' attack needs a random start: its KL term has zero gradient at the clean "
        "input, so an attack started there never moves; set random_start: true");
  }
}

absl::StatusOr<LocalRecipe> NewLocalRecipe(const config::LocalTraining& local, size_t num_params) {
  LocalRecipe recipe;
  recipe.schedule = ScheduleFromConfig(local);
  if (local.has_adversarial()) {
    ProblemList problems;
    ValidateAdversarial(local.adversarial(), "local.adversarial", &problems);
    if (!problems.empty()) return problems.ToStatus();
  }
  // TRADES is the optimizer's objective; plain adversarial training is a
  // transform of the batches (below).
  std::unique_ptr<Objective> objective;
  if (IsTrades(local)) {
    absl::StatusOr<std::unique_ptr<Objective>> trades =
        NewTradesObjective(TradesFromConfig(local.adversarial()));
    if (!trades.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat("local.adversarial: ", trades.status().message()));
    }
    objective = *std::move(trades);
  }
  absl::StatusOr<std::unique_ptr<Optimizer>> optimizer =
      local.has_sam() ? NewSamOptimizer(SamOptions{.rho = local.sam().rho()}, SgdFromConfig(local),
                                        num_params, std::move(objective))
                      : NewSgdOptimizer(SgdFromConfig(local), num_params, std::move(objective));
  if (!optimizer.ok()) {
    return absl::InvalidArgumentError(absl::StrCat("local: ", optimizer.status().message()));
  }
  recipe.optimizer = *std::move(optimizer);
  if (local.has_adversarial() && !IsTrades(local)) {
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
  if (IsTrades(local)) return passes * TradesPasses(TradesFromConfig(local.adversarial()));
  return AdversarialCostMultiplier(AdversarialFromConfig(local.adversarial()), passes);
}

}  // namespace fedsim
