// A per-batch input transform: what local training does to each minibatch
// before the optimizer steps on it. None (the identity) for plain training;
// adversarial training replaces part of the batch by attacked examples.
//
// Thread safety: an instance holds scratch buffers; one thread at a time.
// Deterministic given (params, batch, rng).
#ifndef FEDSIM_ML_BATCH_TRANSFORM_H_
#define FEDSIM_ML_BATCH_TRANSFORM_H_

#include <span>
#include <string>

#include "ml/model.h"
#include "util/rng.h"

namespace fedsim {

class BatchTransform {
 public:
  virtual ~BatchTransform() = default;

  // "pgd(linf, eps=0.1, step=0.01, k=10, start=random, ratio=0.5)" and the like.
  virtual std::string Name() const = 0;

  // The batch the optimizer trains on for this step: `in` itself, or a view
  // of the transform's own buffers (valid until the next Apply; it may hold
  // more rows than `in`, e.g. clean and attacked examples side by side).
  // `params` is the model before this step; `rng` a stream private to it.
  // REQUIRES: in.n > 0; params.size() == model.NumParams().
  virtual BatchView Apply(Model& model, std::span<const float> params, const BatchView& in,
                          Rng& rng) = 0;

  // Extra forward-backward passes one Apply costs on a batch (PGD-k: k; the
  // optimizer's own passes are counted by the optimizer).
  virtual int passes_per_step() const = 0;
};

}  // namespace fedsim

#endif  // FEDSIM_ML_BATCH_TRANSFORM_H_
