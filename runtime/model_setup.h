// The scenario's `model` and `numeric` sections as the trainer's ModelConfig
// (ml/model.h), and their checks. Used by the run's data setup, by workers,
// and by the config layer (validation and the parameter count of
// `fedsim validate`), so each check exists once.
//
// Thread safety: pure functions; may be called from any thread.
#ifndef FEDSIM_RUNTIME_MODEL_SETUP_H_
#define FEDSIM_RUNTIME_MODEL_SETUP_H_

#include <map>
#include <string>

#include "absl/status/statusor.h"
#include "data/dataset.h"
#include "ml/model.h"
#include "proto/scenario.pb.h"
#include "util/problems.h"

namespace fedsim {

// Checks of the `model` section (paths "model.mlp.hidden[1]", "model.cnn.kernel"):
// MLP widths in [1, 2^20], CNN sizes in [1, 65536], and a CNN only on image
// input (height and width > 1).
void ValidateModel(const config::Model& model, const ExampleShape& input, ProblemList* problems);

// Checks of the `numeric` section: a mode must be chosen.
void ValidateNumeric(const config::Numeric& numeric, ProblemList* problems);

// The model architecture for inputs of shape `input` and `num_classes`
// classes, computed in `numeric`'s mode (scenario.numeric; unset = NATIVE).
// An unset kind means the default MLP [200, 200]. InvalidArgument with every
// problem of ValidateModel and ValidateNumeric ("path: message" per line).
absl::StatusOr<ModelConfig> ModelConfigFromProto(
    const config::Model& model, const ExampleShape& input, int num_classes,
    const config::Numeric& numeric = config::Numeric::default_instance());

// The name of a numeric mode as workers key their fingerprints:
// "native" or "reproducible" (unset counts as native).
std::string NumericModeName(const config::Numeric& numeric);

// This binary's numeric fingerprint on this host in each mode, keyed by
// NumericModeName: what a worker reports when it registers.
std::map<std::string, std::string> OwnNumericFingerprints();

}  // namespace fedsim

#endif  // FEDSIM_RUNTIME_MODEL_SETUP_H_
