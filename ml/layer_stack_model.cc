// The layer-stack model: a Model as a list of layers over consecutive slices
// of the flat parameter vector. Compiled into both copies of the numeric
// kernels (ml/variant_namespace.h); NewModel (ml/model.cc) validates the
// configuration and picks the copy.
#include <algorithm>
#include <cstring>
#include <utility>

#include "ml/layers.h"
#include "ml/model.h"
#include "ml/numeric_variant.h"
#include "ml/sgd.h"
#include "util/rng.h"

namespace fedsim {
inline namespace FEDSIM_NUMERIC_NS {
namespace {

// Evaluate and Logits run in chunks of this many rows so that the activation
// buffers stay small whatever the caller's batch.
constexpr int kEvalChunk = 256;

// A model as a stack of layers over consecutive slices of the flat params.
class LayerStackModel final : public Model {
 public:
  LayerStackModel(const ModelConfig& config, Scratch<std::unique_ptr<Layer>> layers)
      : config_(NewModelConfigCopy(config)), layers_(std::move(layers)) {
    size_t off = 0;
    for (const auto& layer : layers_) {
      offsets_.push_back(off);
      off += layer->NumParams();
      max_dim_ = std::max({max_dim_, layer->input_dim(), layer->output_dim()});
    }
    num_params_ = off;
    acts_.resize(layers_.size());
  }

  const ModelConfig& config() const override { return *config_; }
  size_t NumParams() const override { return num_params_; }

  void Init(uint64_t seed, std::span<float> params) const override {
    for (size_t i = 0; i < layers_.size(); ++i) {
      Rng rng(seed, "init", i);
      layers_[i]->Init(rng, params.subspan(offsets_[i], layers_[i]->NumParams()));
    }
  }

  float ForwardBackward(std::span<const float> params, const BatchView& batch,
                        std::span<float> grad, std::span<float> dinput) override {
    // An empty grad (allowed with a dinput) asks for the input gradient only.
    return Backprop(params.data(), batch, grad.empty() ? nullptr : grad.data(), nullptr, nullptr,
                    nullptr, dinput, nullptr);
  }

  float ForwardBackwardLoss(std::span<const float> params, const BatchView& batch, LogitLoss& loss,
                            std::span<float> grad, std::span<float> dinput) override {
    return Backprop(params.data(), batch, grad.empty() ? nullptr : grad.data(), nullptr, nullptr,
                    nullptr, dinput, &loss);
  }

  float ForwardBackwardStep(std::span<float> params, const BatchView& batch, ParamUpdater& updater,
                            std::span<const float> anchor) override {
    return Backprop(params.data(), batch, nullptr, params.data(), &updater, anchor.data(), {},
                    nullptr);
  }

 private:
  // Applies an SGD update to each gradient piece of one layer.
  class StepSink final : public GradSink {
   public:
    StepSink(ParamUpdater& sgd, float* params, const float* anchor, size_t base)
        : sgd_(sgd), params_(params), anchor_(anchor), base_(base) {}
    void Consume(size_t offset, const float* g, size_t count) override {
      const size_t at = base_ + offset;
      sgd_.StepRange(at, params_ + at, g, anchor_ != nullptr ? anchor_ + at : nullptr, count);
    }
    InPlaceStep in_place_step() const override {
      return {sgd_.ElementRule(), base_, params_ + base_,
              anchor_ != nullptr ? anchor_ + base_ : nullptr};
    }

   private:
    ParamUpdater& sgd_;
    float* params_;
    const float* anchor_;
    size_t base_;
  };

  // Forward, loss and backward. The loss is the mean cross-entropy, or
  // `logit_loss` when given. Gradients go to grad when sgd is null, else to
  // an SGD update of step_params (the same vector as params) per layer;
  // nowhere when both are null (then only dinput is wanted).
  float Backprop(const float* params, const BatchView& batch, float* grad, float* step_params,
                 ParamUpdater* sgd, const float* anchor, std::span<float> dinput,
                 LogitLoss* logit_loss) {
    const int n = batch.n;
    const int k = config_->num_classes;
    const float* logits = Forward(params, batch.x, n);
    float* dy = dbuf_[0].data();
    float loss = 0.0f;
    if (logit_loss != nullptr) {
      const size_t count = static_cast<size_t>(n) * k;
      loss = static_cast<float>(logit_loss->Compute(std::span<const float>(logits, count), batch, k,
                                                    std::span<float>(dy, count)));
    } else {
      loss = static_cast<float>(SoftmaxCrossEntropy(logits, batch.y, n, k, dy, nullptr) / n);
    }
    int cur = 0;
    for (size_t i = layers_.size(); i-- > 0;) {
      const float* x = i == 0 ? batch.x : acts_[i - 1].data();
      float* dx = nullptr;
      if (i > 0) {
        dx = dbuf_[1 - cur].data();
      } else if (!dinput.empty()) {
        dx = dinput.data();
      }
      if (sgd == nullptr) {
        layers_[i]->Backward(params + offsets_[i], x, acts_[i].data(), dy, n,
                             grad != nullptr ? grad + offsets_[i] : nullptr, dx);
      } else {
        StepSink sink(*sgd, step_params, anchor, offsets_[i]);
        layers_[i]->BackwardInto(params + offsets_[i], x, acts_[i].data(), dy, n, sink, dx);
      }
      cur = 1 - cur;
      dy = dx;
    }
    return loss;
  }

 public:
  EvalResult Evaluate(std::span<const float> params, const BatchView& batch) override {
    EvalResult r;
    for (int s0 = 0; s0 < batch.n; s0 += kEvalChunk) {
      const int n = std::min(kEvalChunk, batch.n - s0);
      const float* logits =
          Forward(params.data(), batch.x + static_cast<size_t>(s0) * config_->input_dim(), n);
      r.loss_sum +=
          SoftmaxCrossEntropy(logits, batch.y + s0, n, config_->num_classes, nullptr, &r.correct);
      r.count += n;
    }
    return r;
  }

  void Logits(std::span<const float> params, const BatchView& batch,
              std::span<float> out) override {
    const int k = config_->num_classes;
    for (int s0 = 0; s0 < batch.n; s0 += kEvalChunk) {
      const int n = std::min(kEvalChunk, batch.n - s0);
      const float* logits =
          Forward(params.data(), batch.x + static_cast<size_t>(s0) * config_->input_dim(), n);
      std::memcpy(out.data() + static_cast<size_t>(s0) * k, logits,
                  sizeof(float) * static_cast<size_t>(n) * k);
    }
  }

 private:
  // Grows the workspaces to n rows (they never shrink).
  void Reserve(int n) {
    if (n <= capacity_) return;
    for (size_t i = 0; i < layers_.size(); ++i) {
      acts_[i].resize(static_cast<size_t>(n) * layers_[i]->output_dim());
    }
    for (auto& b : dbuf_) b.resize(static_cast<size_t>(n) * max_dim_);
    capacity_ = n;
  }

  // Runs every layer; returns the logits (n x num_classes, in acts_.back()).
  const float* Forward(const float* params, const float* x, int n) {
    Reserve(n);
    const float* cur = x;
    for (size_t i = 0; i < layers_.size(); ++i) {
      layers_[i]->Forward(params + offsets_[i], cur, n, acts_[i].data());
      cur = acts_[i].data();
    }
    return cur;
  }

  // Made and freed outside this copy (NewModelConfigCopy in ml/model.h).
  struct ConfigDeleter {
    void operator()(const ModelConfig* c) const { DeleteModelConfig(c); }
  };
  std::unique_ptr<const ModelConfig, ConfigDeleter> config_;
  Scratch<std::unique_ptr<Layer>> layers_;
  Scratch<size_t> offsets_;
  size_t num_params_ = 0;
  int max_dim_ = 0;
  int capacity_ = 0;
  Scratch<Scratch<float>> acts_;  // output of each layer
  Scratch<float> dbuf_[2];        // ping-pong activation gradients
};

}  // namespace

std::unique_ptr<Model> NewLayerStackModel(const ModelConfig& config) {
  Scratch<std::unique_ptr<Layer>> layers;
  const int k = config.num_classes;
  switch (config.kind) {
    case ModelConfig::Kind::kSoftmax:
      layers.push_back(std::make_unique<Dense>(config.input_dim(), k, Activation::kNone));
      break;
    case ModelConfig::Kind::kMlp: {
      int in = config.input_dim();
      for (const int h : config.hidden) {
        layers.push_back(std::make_unique<Dense>(in, h, Activation::kRelu));
        in = h;
      }
      layers.push_back(std::make_unique<Dense>(in, k, Activation::kNone));
      break;
    }
    case ModelConfig::Kind::kCnn: {
      const TensorShape in{config.input_channels, config.input_height, config.input_width};
      auto conv1 = std::make_unique<Conv2d>(in, config.conv1, config.kernel, Activation::kRelu,
                                            /*input_chw=*/true);
      auto pool1 = std::make_unique<MaxPool2>(conv1->output_shape());
      auto conv2 = std::make_unique<Conv2d>(pool1->output_shape(), config.conv2, config.kernel,
                                            Activation::kRelu, /*input_chw=*/false);
      auto pool2 = std::make_unique<MaxPool2>(conv2->output_shape());
      const int flat = pool2->output_dim();
      layers.push_back(std::move(conv1));
      layers.push_back(std::move(pool1));
      layers.push_back(std::move(conv2));
      layers.push_back(std::move(pool2));
      layers.push_back(std::make_unique<Dense>(flat, config.fc, Activation::kRelu));
      layers.push_back(std::make_unique<Dense>(config.fc, k, Activation::kNone));
      break;
    }
  }
  return std::make_unique<LayerStackModel>(config, std::move(layers));
}

}  // namespace FEDSIM_NUMERIC_NS
}  // namespace fedsim
