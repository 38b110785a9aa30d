// The ReLU layer and the softmax cross-entropy loss.
#include <algorithm>
#include <cmath>
#include <cstdint>

#include "ml/fixed_math.h"
#include "ml/layers.h"

namespace fedsim {
inline namespace FEDSIM_NUMERIC_NS {
namespace {

// libm in the native copy (today's bits); the fixed implementations in the
// reproducible copy, since glibc's differ per CPU (ml/fixed_math.h).
inline float ExpF(float x) {
#if FEDSIM_NUMERIC_REPRODUCIBLE
  return FixedExpF(x);
#else
  return std::exp(x);
#endif
}

inline double Log(double x) {
#if FEDSIM_NUMERIC_REPRODUCIBLE
  return FixedLog(x);
#else
  return std::log(x);
#endif
}

}  // namespace

// ---------------------------------------------------------------- Relu

void Relu::Forward(const float*, const float* x, int n, float* y) {
  const size_t count = static_cast<size_t>(n) * shape_.dim();
  for (size_t i = 0; i < count; ++i) y[i] = std::max(x[i], 0.0f);
}

void Relu::Backward(const float*, const float*, const float* y, float* dy, int n, float*,
                    float* dx) {
  if (dx == nullptr) return;
  const size_t count = static_cast<size_t>(n) * shape_.dim();
  for (size_t i = 0; i < count; ++i) dx[i] = y[i] > 0.0f ? dy[i] : 0.0f;
}

// ---------------------------------------------------------------- loss

double SoftmaxCrossEntropy(const float* logits, const int32_t* labels, int n, int k,
                           float* dlogits, int64_t* correct) {
  double loss = 0.0;
  int64_t hits = 0;
  const float inv_n = 1.0f / static_cast<float>(n);
  for (int i = 0; i < n; ++i) {
    const float* l = logits + static_cast<size_t>(i) * k;
    int arg = 0;
    for (int j = 1; j < k; ++j) {
      if (l[j] > l[arg]) arg = j;
    }
    const float m = l[arg];
    float sum = 0.0f;
    for (int j = 0; j < k; ++j) sum += ExpF(l[j] - m);
    const int label = labels[i];
    loss += static_cast<double>(m) + Log(static_cast<double>(sum)) - l[label];
    hits += arg == label;
    if (dlogits != nullptr) {
      float* d = dlogits + static_cast<size_t>(i) * k;
      const float scale = inv_n / sum;
      for (int j = 0; j < k; ++j) d[j] = ExpF(l[j] - m) * scale;
      d[label] -= inv_n;
    }
  }
  if (correct != nullptr) *correct += hits;
  return loss;
}

}  // namespace FEDSIM_NUMERIC_NS
}  // namespace fedsim
