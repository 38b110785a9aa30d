// What a local step minimizes on its batch, as a function of the parameters:
// an Objective returns its value and its parameter gradient at the points an
// optimizer asks for (SGD at w; SAM at w and at its ascent point).
//
// Without an objective an optimizer minimizes the batch's mean softmax
// cross-entropy, which plain SGD computes in one fused pass
// (Model::ForwardBackwardStep). An objective replaces that loss; TRADES
// (ml/trades.h) is one: the clean cross-entropy plus a KL term at an attacked
// input that the objective itself finds.
//
// Thread safety: an Objective holds scratch buffers; one thread at a time.
// Deterministic: a pure function of (params, batch, the rng stream).
#ifndef FEDSIM_ML_OBJECTIVE_H_
#define FEDSIM_ML_OBJECTIVE_H_

#include <span>
#include <string>

#include "ml/model.h"
#include "util/rng.h"

namespace fedsim {

class Objective {
 public:
  virtual ~Objective() = default;

  // "trades(beta=6, pgd(linf, eps=0.1, ...))" and the like: every value it reads.
  virtual std::string Name() const = 0;

  // Overwrites grad with d objective / d params at `params` and returns the
  // objective's value there. `rng` is the calling step's stream (an inner
  // attack's random start); an optimizer that evaluates the gradient twice
  // in one step passes the same stream twice (the second call continues it).
  // REQUIRES: params.size() == grad.size() == model.NumParams(); batch.n > 0.
  virtual float Gradient(Model& model, std::span<const float> params, const BatchView& batch,
                         Rng& rng, std::span<float> grad) = 0;

  // Forward-backward passes over the batch's rows that one Gradient costs
  // (the device model's compute-time factor; the mean cross-entropy is 1).
  virtual int passes() const = 0;
};

}  // namespace fedsim

#endif  // FEDSIM_ML_OBJECTIVE_H_
