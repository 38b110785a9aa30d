#include "ml/model.h"

#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "ml/numeric.h"
#include "ml/numeric_variant.h"
#include "ml/sgd.h"

namespace fedsim {
namespace {

absl::Status Positive(int value, const char* field) {
  if (value > 0) return absl::OkStatus();
  return absl::InvalidArgumentError(
      absl::StrCat("model config: ", field, " must be > 0, got ", value));
}

// Every check on the configuration, so that the copies' builders
// (NewLayerStackModel) cannot fail.
absl::Status ValidateModelConfig(const ModelConfig& config) {
  for (auto [value, field] : {std::pair{config.input_channels, "input_channels"},
                              std::pair{config.input_height, "input_height"},
                              std::pair{config.input_width, "input_width"},
                              std::pair{config.num_classes, "num_classes"}}) {
    if (absl::Status s = Positive(value, field); !s.ok()) return s;
  }
  switch (config.kind) {
    case ModelConfig::Kind::kSoftmax:
      return absl::OkStatus();
    case ModelConfig::Kind::kMlp:
      for (size_t i = 0; i < config.hidden.size(); ++i) {
        if (config.hidden[i] <= 0) {
          return absl::InvalidArgumentError(
              absl::StrCat("model config: hidden[", i, "] must be > 0, got ", config.hidden[i]));
        }
      }
      return absl::OkStatus();
    case ModelConfig::Kind::kCnn: {
      for (auto [value, field] :
           {std::pair{config.conv1, "conv1"}, std::pair{config.conv2, "conv2"},
            std::pair{config.kernel, "kernel"}, std::pair{config.fc, "fc"}}) {
        if (absl::Status s = Positive(value, field); !s.ok()) return s;
      }
      if (config.input_height < 4 || config.input_width < 4) {
        return absl::InvalidArgumentError(absl::StrCat(
            "model config: a CNN needs input_height and input_width >= 4 (two 2x2 pools), got ",
            config.input_height, "x", config.input_width));
      }
      if (config.kernel > config.input_height / 2 || config.kernel > config.input_width / 2) {
        return absl::InvalidArgumentError(absl::StrCat(
            "model config: kernel ", config.kernel, " is larger than the second conv's input ",
            config.input_height / 2, "x", config.input_width / 2));
      }
      return absl::OkStatus();
    }
  }
  return absl::InvalidArgumentError("model config: unknown kind");
}

}  // namespace

float Model::ForwardBackwardStep(std::span<float> params, const BatchView& batch,
                                 ParamUpdater& updater, std::span<const float> anchor) {
  std::vector<float> grad(params.size());
  const float loss = ForwardBackward(params, batch, grad);
  updater.StepRange(0, params.data(), grad.data(), anchor.empty() ? nullptr : anchor.data(),
                    params.size());
  return loss;
}

std::string ModelConfig::ToString() const {
  switch (kind) {
    case Kind::kSoftmax:
      return absl::StrCat("softmax(", input_dim(), "-", num_classes, ")");
    case Kind::kMlp:
      return absl::StrCat("mlp(", input_dim(), hidden.empty() ? "" : "-",
                          absl::StrJoin(hidden, "-"), "-", num_classes, ")");
    case Kind::kCnn:
      return absl::StrCat("cnn(", input_channels, "x", input_height, "x", input_width, "-conv",
                          kernel, "x", kernel, "x", conv1, "-pool-conv", kernel, "x", kernel, "x",
                          conv2, "-pool-fc", fc, "-", num_classes, ")");
  }
  return "unknown";
}

const ModelConfig* NewModelConfigCopy(const ModelConfig& config) { return new ModelConfig(config); }

void DeleteModelConfig(const ModelConfig* config) { delete config; }

absl::StatusOr<std::unique_ptr<Model>> NewModel(const ModelConfig& config) {
  if (absl::Status s = ValidateModelConfig(config); !s.ok()) return s;
  if (absl::Status s = CheckNumericSupport(config.numeric); !s.ok()) return s;
  switch (config.numeric) {
    case ModelConfig::Numeric::kNative:
      return native::NewLayerStackModel(config);
    case ModelConfig::Numeric::kReproducible:
#if defined(FEDSIM_HAVE_REPRODUCIBLE_NUMERIC)
      return repro::NewLayerStackModel(config);
#else
      break;  // CheckNumericSupport refused it above
#endif
  }
  return absl::InvalidArgumentError("model config: unknown numeric mode");
}

}  // namespace fedsim
