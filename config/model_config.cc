#include "config/model_config.h"

#include <memory>
#include <string>
#include <tuple>
#include <utility>

#include "absl/strings/str_cat.h"
#include "util/status_macros.h"

namespace fedsim {

ModelInput ScenarioModelInput(const config::Scenario& scenario) {
  if (scenario.dataset().has_synthetic()) {
    const SyntheticOptions defaults;
    return ModelInput{ExampleShape{defaults.num_features, 1, 1}, defaults.num_classes};
  }
  return ModelInput{kFashionMnistShape, 10};  // LoadFashionMnist holds the files to it
}

absl::StatusOr<ModelConfig> ModelConfigForScenario(const config::Scenario& scenario) {
  const ModelInput input = ScenarioModelInput(scenario);
  return ModelConfigFromProto(scenario.model(), input.shape, input.num_classes,
                              scenario.numeric());
}

absl::StatusOr<size_t> ModelParamsForScenario(const config::Scenario& scenario) {
  FEDSIM_ASSIGN_OR_RETURN(ModelConfig config, ModelConfigForScenario(scenario));
  FEDSIM_ASSIGN_OR_RETURN(std::unique_ptr<Model> model, NewModel(config));
  return model->NumParams();
}

}  // namespace fedsim
