// The scenario's `model` section: its checks and its translation into the
// trainer's ModelConfig (ml/model.h), and the parameter count the memory
// estimate (memory.h) and `fedsim validate` need, all from the schema alone
// (no data loaded).
//
// Thread safety: pure functions; may be called from any thread.
#ifndef FEDSIM_CONFIG_MODEL_CONFIG_H_
#define FEDSIM_CONFIG_MODEL_CONFIG_H_

#include <cstddef>

#include "absl/status/statusor.h"
#include "data/dataset.h"
#include "ml/model.h"
#include "proto/scenario.pb.h"
#include "runtime/model_setup.h"
#include "util/problems.h"

namespace fedsim {

// What a model is built for: the dataset's example shape and class count.
struct ModelInput {
  ExampleShape shape;  // Default: 1 x 1 x 1.
  int num_classes = 0;
};

// The input of the scenario's dataset as the schema fixes it: Fashion-MNIST
// 1 x 28 x 28 with 10 classes (also when no dataset is set: the default),
// Synthetic(alpha, beta) a 60-feature vector with 10 classes.
ModelInput ScenarioModelInput(const config::Scenario& scenario);

// ValidateModel and ModelConfigFromProto are runtime's (runtime/model_setup.h):
// workers build models too.

// ModelConfigFromProto(scenario.model(), ScenarioModelInput(scenario),
// scenario.numeric()).
absl::StatusOr<ModelConfig> ModelConfigForScenario(const config::Scenario& scenario);

// The parameter count of the scenario's model, so a server can start
// listening (and validation can estimate memory) before any data loads.
// Equals the count of the model built from the loaded data.
absl::StatusOr<size_t> ModelParamsForScenario(const config::Scenario& scenario);

}  // namespace fedsim

#endif  // FEDSIM_CONFIG_MODEL_CONFIG_H_
