#include "runtime/local_recipe.h"

#include "absl/strings/str_cat.h"

namespace fedsim {
namespace {

SgdOptions SgdFromConfig(const config::LocalTraining& local) {
  return SgdOptions{.lr = local.lr(),
                    .momentum = local.momentum(),
                    .weight_decay = local.weight_decay(),
                    .prox_mu = local.prox_mu()};
}

}  // namespace

LocalSchedule ScheduleFromConfig(const config::LocalTraining& local) {
  return LocalSchedule{
      .epochs = local.epochs(), .steps = local.steps(), .batch_size = local.batch_size()};
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
  return recipe;
}

double ComputeCostMultiplier(const config::LocalTraining& local) {
  double passes = 1;
  if (local.has_sam()) passes = 2;
  return passes;
}

}  // namespace fedsim
