// Models as functions over one flat float32 parameter vector.
//
// Aggregation, momentum, SAM perturbation, error feedback and checkpoints all
// work on that flat vector; a Model only knows how to read it.
//
// Thread safety: a Model owns scratch workspaces reused across calls (no heap
// churn in the training loop), so one instance serves one thread at a time.
// Instances are cheap: make one per thread with NewModel(). Every call is
// single-threaded and deterministic: the same params and batch give
// bit-identical results (on one kind of host, or on every x86-64-v3 host in
// ModelConfig::Numeric::kReproducible mode; see ml/numeric.h).
#ifndef FEDSIM_ML_MODEL_H_
#define FEDSIM_ML_MODEL_H_

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "data/dataset.h"

namespace fedsim {

class ParamUpdater;

// A small description of an architecture (mirrors config.Model in the scenario).
struct ModelConfig {
  enum class Kind { kSoftmax, kMlp, kCnn };
  // Default: kMlp.
  Kind kind = Kind::kMlp;
  // Input shape; Default: 1 x 28 x 28 (Fashion-MNIST). Vectors: dim x 1 x 1.
  int input_channels = 1;
  int input_height = 28;
  int input_width = 28;
  // The input shape as data/dataset.h spells it.
  ExampleShape example_shape() const { return {input_channels, input_height, input_width}; }
  // Default: 10.
  int num_classes = 10;
  // MLP hidden widths, ReLU between. Default: {200, 200} (McMahan's 2NN).
  std::vector<int> hidden = {200, 200};
  // CNN: conv k x k conv1 -> ReLU -> maxpool 2 -> conv k x k conv2 -> ReLU ->
  // maxpool 2 -> FC fc -> ReLU -> FC num_classes ("same" padding, stride 1).
  // Defaults: 32, 64, 5, 512 (McMahan's CNN).
  int conv1 = 32;
  int conv2 = 64;
  int kernel = 5;
  int fc = 512;

  // Which compiled copy of the numeric kernels runs the model (ml/numeric.h).
  // kNative: compiled with the build's flags (-march=native unless
  // FEDSIM_NATIVE=OFF) and Eigen's GEMM blocking from the cache sizes the CPU
  // reports: the fastest, but the bits depend on the host. kReproducible: the
  // x86-64-v3 (AVX2 + FMA) copy with fixed GEMM blocking and fixed exp/log:
  // the same bits on every x86-64-v3 host; on an AVX-512 host it trains the
  // MLP at ~0.8-0.9x and the CNN at ~0.6-0.7x native speed. NewModel refuses
  // kReproducible on a host without x86-64-v3.
  // Default: kNative.
  enum class Numeric { kNative, kReproducible };
  Numeric numeric = Numeric::kNative;

  int input_dim() const { return input_channels * input_height * input_width; }
  // "mlp(784-200-200-10)" and the like, for logs and reports.
  std::string ToString() const;
};

// A batch: x is n rows of input_dim floats (row-major), y holds n labels.
struct BatchView {
  const float* x = nullptr;
  const int32_t* y = nullptr;
  int n = 0;
};

struct EvalResult {
  double loss_sum = 0.0;  // summed cross-entropy (divide by count for the mean)
  int64_t correct = 0;
  int64_t count = 0;
};

// A loss computed from a batch's logits, for Model::ForwardBackwardLoss:
// any loss other than the built-in mean cross-entropy (TRADES' clean plus KL
// term, the KL divergence its attack ascends; ml/trades.h). The model calls
// it once per ForwardBackwardLoss, between the forward and the backward pass,
// on the caller's thread.
//
// Implementations live outside the model's numeric copies (ml/numeric.h), so
// their arithmetic is their own: one that must give the same bits on every
// host avoids libm's exp and log (see ml/fixed_math.h) and contraction-
// dependent expressions.
class LogitLoss {
 public:
  virtual ~LogitLoss() = default;
  // `logits` holds batch.n rows of num_classes floats (row-major), computed
  // at the call's params. Writes d loss / d logits (same shape) into
  // `dlogits` and returns the loss; `batch` is the model's batch (labels).
  virtual double Compute(std::span<const float> logits, const BatchView& batch, int num_classes,
                         std::span<float> dlogits) = 0;
};

class Model {
 public:
  virtual ~Model() = default;

  virtual const ModelConfig& config() const = 0;
  virtual size_t NumParams() const = 0;

  // Fills params with a seeded initialization (Kaiming-uniform for layers
  // followed by ReLU, Glorot-uniform otherwise; biases zero).
  // REQUIRES: params.size() == NumParams().
  virtual void Init(uint64_t seed, std::span<float> params) const = 0;

  // Mean softmax cross-entropy over the batch. Overwrites grad with
  // d loss / d params. If dinput is non-empty, also writes d loss / d x
  // (n x input_dim), as adversarial training needs. With dinput non-empty,
  // grad may be empty: then only d loss / d x is computed (an attack's
  // pass), bit-identical to the one written along with grad, and the work
  // of the parameter gradient is skipped.
  // REQUIRES: params.size() == NumParams(); grad.size() == NumParams(), or
  //           grad empty and dinput non-empty; batch.n > 0;
  //           dinput empty or of size batch.n * input_dim.
  virtual float ForwardBackward(std::span<const float> params, const BatchView& batch,
                                std::span<float> grad, std::span<float> dinput = {}) = 0;

  // As ForwardBackward, but the loss is `loss` over the batch's logits
  // instead of the mean cross-entropy: its d loss / d logits is
  // back-propagated. Returns what `loss` returned (as a float). With grad
  // empty and dinput non-empty only d loss / d x is computed (an attack
  // ascending a loss of its own).
  // REQUIRES: as ForwardBackward.
  virtual float ForwardBackwardLoss(std::span<const float> params, const BatchView& batch,
                                    LogitLoss& loss, std::span<float> grad,
                                    std::span<float> dinput = {}) = 0;

  // One fused step: the same as ForwardBackward(params, batch, grad)
  // followed by updater.StepRange over the whole vector, bit for bit, but
  // each layer's parameters are updated as soon as their gradient is known
  // (while it is in cache), and no full gradient vector is written. Returns
  // the mean loss.
  // REQUIRES: params.size() == NumParams() == the updater's size; batch.n > 0;
  //           anchor empty or NumParams() floats.
  virtual float ForwardBackwardStep(std::span<float> params, const BatchView& batch,
                                    ParamUpdater& updater, std::span<const float> anchor = {});

  // Summed loss and correct count over the batch; no gradients.
  virtual EvalResult Evaluate(std::span<const float> params, const BatchView& batch) = 0;

  // Writes batch.n x num_classes logits into out (batch.y is not read).
  virtual void Logits(std::span<const float> params, const BatchView& batch,
                      std::span<float> out) = 0;
};

// InvalidArgument for an impossible configuration (zero sizes, a CNN kernel
// larger than the input, ...), naming the field; FailedPrecondition when
// config.numeric is kReproducible and this binary or host cannot run it
// (see CheckNumericSupport in ml/numeric.h).
absl::StatusOr<std::unique_ptr<Model>> NewModel(const ModelConfig& config);

// For the numeric copies (ml/variant_namespace.h): a heap copy of a
// ModelConfig made and freed in code compiled once. A copy that held one by
// value would instantiate std::vector<int>'s members under its own ISA
// flags, in symbols the other copy shares (ml_repro_symbols_are_private).
const ModelConfig* NewModelConfigCopy(const ModelConfig& config);
void DeleteModelConfig(const ModelConfig* config);

}  // namespace fedsim

#endif  // FEDSIM_ML_MODEL_H_
