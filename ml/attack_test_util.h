// Shared by the attack, adversarial-training and robust-evaluation tests
// (test-only): separable generated data and a small model trained on it, so
// that sanity properties of attacks ("PGD hurts more than FGSM") are checked
// on a model that has something to lose.
#ifndef FEDSIM_ML_ATTACK_TEST_UTIL_H_
#define FEDSIM_ML_ATTACK_TEST_UTIL_H_

#include <algorithm>
#include <cstdint>
#include <memory>
#include <vector>

#include "gtest/gtest.h"
#include "ml/model.h"
#include "ml/sgd.h"
#include "util/rng.h"

namespace fedsim {
namespace testing {

struct Examples {
  std::vector<float> x;
  std::vector<int32_t> y;
  int dim = 0;
  int n() const { return static_cast<int>(y.size()); }
  BatchView view() const { return {x.data(), y.data(), n()}; }
  BatchView rows(int begin, int count) const {
    return {x.data() + static_cast<size_t>(begin) * dim, y.data() + begin, count};
  }
};

// k Gaussian blobs (sd 0.08) around means drawn in [0.25, 0.75]^dim, clamped
// to [0, 1] like pixels. Class means are the same for every `seed` of the
// same `means_seed`, so train and test sets come from one distribution.
inline Examples SeparableData(int dim, int k, int n, uint64_t seed, uint64_t means_seed = 1) {
  Rng mr(means_seed, "blob_means");
  std::vector<float> means(static_cast<size_t>(k) * dim);
  for (float& m : means) m = static_cast<float>(mr.Uniform(0.25, 0.75));
  Rng rng(seed, "blob_points");
  Examples e;
  e.dim = dim;
  e.x.resize(static_cast<size_t>(n) * dim);
  for (int i = 0; i < n; ++i) {
    const int c = static_cast<int>(rng.UniformInt(k));
    e.y.push_back(c);
    for (int j = 0; j < dim; ++j) {
      const double v = means[static_cast<size_t>(c) * dim + j] + rng.Normal(0.0, 0.08);
      e.x[static_cast<size_t>(i) * dim + j] = static_cast<float>(std::clamp(v, 0.0, 1.0));
    }
  }
  return e;
}

inline ModelConfig VectorModel(ModelConfig::Kind kind, int dim, int k,
                               std::vector<int> hidden = {16}) {
  ModelConfig c;
  c.kind = kind;
  c.input_channels = dim;
  c.input_height = 1;
  c.input_width = 1;
  c.num_classes = k;
  c.hidden = std::move(hidden);
  return c;
}

// Plain minibatch SGD, `epochs` passes in order over `data`.
inline void TrainPlain(Model& model, std::vector<float>& params, const Examples& data, int epochs,
                       double lr, int batch = 20) {
  Sgd sgd(SgdOptions{.lr = lr, .momentum = 0.9}, params.size());
  for (int e = 0; e < epochs; ++e) {
    for (int b = 0; b + batch <= data.n(); b += batch) {
      model.ForwardBackwardStep(params, data.rows(b, batch), sgd);
    }
  }
}

inline double Accuracy(Model& model, std::span<const float> params, const BatchView& b) {
  const EvalResult r = model.Evaluate(params, b);
  return static_cast<double>(r.correct) / static_cast<double>(r.count);
}

inline double MeanLoss(Model& model, std::span<const float> params, const BatchView& b) {
  const EvalResult r = model.Evaluate(params, b);
  return r.loss_sum / static_cast<double>(r.count);
}

}  // namespace testing
}  // namespace fedsim

#endif  // FEDSIM_ML_ATTACK_TEST_UTIL_H_
