// Stochastic gradient descent on one flat float32 parameter vector.
//
// One step, in the PyTorch convention (no dampening):
//   g = grad + weight_decay * w + prox_mu * (w - anchor)
//   v = momentum * v + g            (only when momentum > 0; v starts at 0;
//                                    a subnormal v is flushed to 0)
//   w = w - lr * (momentum > 0 ? v : g)
//
// Thread safety: an Sgd object holds the momentum buffer; one thread at a
// time. Deterministic: elementwise float arithmetic in a fixed order.
#ifndef FEDSIM_ML_SGD_H_
#define FEDSIM_ML_SGD_H_

#include <cstddef>
#include <span>
#include <vector>

namespace fedsim {

// The per-element arithmetic of an SGD step (the formula above), for a
// kernel that computes a gradient block in registers and applies the step
// there instead of storing the block (ml/small_gemm.h, XtTimesDyStep). With
// float coefficients, per element:
//   g = fma(weight_decay, w, grad)
//   g = fma(prox_mu, w - anchor, g)            only when prox
//   v = fma(momentum, v, g), 0 if |v| < FLT_MIN  only when velocity != null
//   w = fma(-lr, velocity != null ? v : g, w)
// except that without velocity, prox and weight decay the step is
// w = fma(-lr, grad, w). These are Sgd::StepRange's bits exactly.
struct SgdElementRule {
  float lr = 0;
  float weight_decay = 0;
  float prox_mu = 0;
  float momentum = 0;
  bool prox = false;
  // Element 0 of the velocity vector; null without momentum.
  float* velocity = nullptr;
};

// A per-element parameter update applied piece by piece, so a model can fuse
// it into its backward pass (Model::ForwardBackwardStep) and update each
// layer while its gradient is still in cache.
class ParamUpdater {
 public:
  virtual ~ParamUpdater() = default;

  // The update as an SgdElementRule, for kernels that apply it in
  // registers; null when it is not one (the default). Applying the rule to
  // any element must give StepRange's bits for that element.
  virtual const SgdElementRule* ElementRule() const { return nullptr; }

  // Updates elements [offset, offset + count) of the parameter vector:
  // params and grad point at element `offset` of theirs; anchor (the task's
  // base model, for a proximal term) too, or is null. Updates over any
  // partition of the vector, in any order, must be bit-identical to one
  // update of the whole.
  virtual void StepRange(size_t offset, float* params, const float* grad, const float* anchor,
                         size_t count) = 0;
};

struct SgdOptions {
  // Default: 0.1.
  double lr = 0.1;
  // Default: 0 (plain SGD).
  double momentum = 0.0;
  // Default: 0. L2 weight decay added to the gradient.
  double weight_decay = 0.0;
  // Default: 0. FedProx proximal term: gradient += prox_mu * (w - anchor).
  double prox_mu = 0.0;
};

class Sgd final : public ParamUpdater {
 public:
  // REQUIRES: lr >= 0, momentum in [0, 1), weight_decay >= 0, prox_mu >= 0.
  Sgd(const SgdOptions& options, size_t num_params);
  // rule_ points into velocity_: a copy would share the original's
  // velocity. A move takes the buffer along.
  Sgd(const Sgd&) = delete;
  Sgd& operator=(const Sgd&) = delete;
  Sgd(Sgd&&) = default;

  // Updates params in place from grad (grad is not modified).
  // REQUIRES: params.size() == grad.size() == num_params; anchor is
  //           num_params floats when prox_mu > 0 (it is not read otherwise).
  void Step(std::span<float> params, std::span<const float> grad,
            std::span<const float> anchor = {});

  // Step restricted to elements [offset, offset + count) of the parameter
  // vector: params and grad point at element `offset` of theirs, anchor (read
  // only when prox_mu > 0) too. Each element gets exactly Step's arithmetic,
  // so steps over any partition of [0, num_params), in any order, are
  // bit-identical to one Step. (Model::ForwardBackwardStep uses this to
  // update each layer while its gradient is still in cache.)
  // REQUIRES: offset + count <= num_params.
  void StepRange(size_t offset, float* params, const float* grad, const float* anchor,
                 size_t count) override;

  const SgdElementRule* ElementRule() const override { return &rule_; }

  // Zeroes the momentum buffer.
  void Reset();

  const SgdOptions& options() const { return options_; }

 private:
  SgdOptions options_;
  std::vector<float> velocity_;  // empty when momentum == 0
  SgdElementRule rule_;          // velocity_'s data, which never moves
};

}  // namespace fedsim

#endif  // FEDSIM_ML_SGD_H_
