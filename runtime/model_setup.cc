#include "runtime/model_setup.h"

#include <string>
#include <tuple>

#include "absl/strings/str_cat.h"
#include "ml/numeric.h"
#include "util/status_macros.h"

namespace fedsim {
namespace {

constexpr uint32_t kMaxWidth = 1u << 20;
constexpr uint32_t kMaxCnnSize = 1u << 16;

}  // namespace

void ValidateModel(const config::Model& model, const ExampleShape& input, ProblemList* p) {
  if (model.has_mlp()) {
    for (int i = 0; i < model.mlp().hidden_size(); ++i) {
      const uint32_t w = model.mlp().hidden(i);
      const std::string path = absl::StrCat("model.mlp.hidden[", i, "]");
      if (w == 0) {
        p->Add(path, "a hidden layer of width 0; remove it or give it a width > 0");
      } else if (w > kMaxWidth) {
        p->Add(path, absl::StrCat("width ", w, " is above ", kMaxWidth, "; use a smaller width"));
      }
    }
  }
  if (model.has_cnn()) {
    const config::Model::Cnn& c = model.cnn();
    if (input.height <= 1 || input.width <= 1) {
      p->Add("model.cnn",
             "a CNN needs image input but this dataset has feature vectors; use softmax or mlp");
    }
    for (auto [v, name, hint] :
         {std::tuple{c.conv1_channels(), "conv1_channels", ""},
          std::tuple{c.conv2_channels(), "conv2_channels", ""},
          std::tuple{c.kernel(), "kernel", "; the usual is 5"}, std::tuple{c.fc(), "fc", ""}}) {
      const std::string path = absl::StrCat("model.cnn.", name);
      if (v == 0) {
        p->Add(path, absl::StrCat("must be > 0, got 0", hint));
      } else if (v > kMaxCnnSize) {
        p->Add(path, absl::StrCat(v, " is above ", kMaxCnnSize, "; use a smaller value"));
      }
    }
  }
}

void ValidateNumeric(const config::Numeric& numeric, ProblemList* p) {
  if (numeric.mode() == config::Numeric::MODE_UNSPECIFIED) {
    p->Add("numeric.mode",
           "is unspecified; use NATIVE (fastest, host-dependent bits) or REPRODUCIBLE (the same "
           "bits on every x86-64-v3 host)");
  }
}

absl::StatusOr<ModelConfig> ModelConfigFromProto(const config::Model& model,
                                                 const ExampleShape& input, int num_classes,
                                                 const config::Numeric& numeric) {
  ProblemList problems;
  ValidateModel(model, input, &problems);
  ValidateNumeric(numeric, &problems);
  FEDSIM_RETURN_IF_ERROR(problems.ToStatus());
  ModelConfig c;
  c.numeric = numeric.mode() == config::Numeric::REPRODUCIBLE ? ModelConfig::Numeric::kReproducible
                                                              : ModelConfig::Numeric::kNative;
  c.input_channels = input.channels;
  c.input_height = input.height;
  c.input_width = input.width;
  c.num_classes = num_classes;
  switch (model.kind_case()) {
    case config::Model::kSoftmax:
      c.kind = ModelConfig::Kind::kSoftmax;
      c.hidden.clear();
      break;
    case config::Model::kMlp:
    case config::Model::KIND_NOT_SET:
      c.kind = ModelConfig::Kind::kMlp;
      if (model.has_mlp() && model.mlp().hidden_size() > 0) {
        c.hidden.clear();
        for (uint32_t w : model.mlp().hidden()) c.hidden.push_back(static_cast<int>(w));
      }
      break;
    case config::Model::kCnn: {
      const auto& cnn = model.cnn();
      c.kind = ModelConfig::Kind::kCnn;
      c.hidden.clear();
      c.conv1 = static_cast<int>(cnn.conv1_channels());
      c.conv2 = static_cast<int>(cnn.conv2_channels());
      c.kernel = static_cast<int>(cnn.kernel());
      c.fc = static_cast<int>(cnn.fc());
      break;
    }
  }
  return c;
}

std::string NumericModeName(const config::Numeric& numeric) {
  return numeric.mode() == config::Numeric::REPRODUCIBLE ? "reproducible" : "native";
}

std::map<std::string, std::string> OwnNumericFingerprints() {
  std::map<std::string, std::string> out;
  ModelConfig c;
  c.numeric = ModelConfig::Numeric::kNative;
  out["native"] = NumericFingerprint(c);
  c.numeric = ModelConfig::Numeric::kReproducible;
  out["reproducible"] = NumericFingerprint(c);
  return out;
}

}  // namespace fedsim
