// Internal to ml/layers_*.cc: Eigen map types and the small elementwise
// passes that several layers share. Inline, in the copy's namespace
// (ml/variant_namespace.h), so each copy of the kernels has its own.
#ifndef FEDSIM_ML_LAYER_UTIL_H_
#define FEDSIM_ML_LAYER_UTIL_H_

#include <algorithm>
#include <cstddef>

#include "Eigen/Core"
#include "ml/layers.h"
#include "util/rng.h"

namespace fedsim {
inline namespace FEDSIM_NUMERIC_NS {
namespace layer_util {

using RowMat = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
using MatMap = Eigen::Map<RowMat>;
using ConstMatMap = Eigen::Map<const RowMat>;
using ColMat = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::ColMajor>;
using ColMatMap = Eigen::Map<ColMat>;

inline void FillUniform(Rng& rng, double bound, float* p, size_t count) {
  for (size_t i = 0; i < count; ++i) p[i] = static_cast<float>(rng.Uniform(-bound, bound));
}

// y[r, :] = act(y[r, :] + b) for rows of width `cols`.
inline void AddBiasActivate(const float* __restrict b, int rows, int cols, Activation act,
                            float* __restrict y) {
  for (int r = 0; r < rows; ++r) {
    float* row = y + static_cast<size_t>(r) * cols;
    if (act == Activation::kRelu) {
      for (int j = 0; j < cols; ++j) row[j] = std::max(row[j] + b[j], 0.0f);
    } else {
      for (int j = 0; j < cols; ++j) row[j] += b[j];
    }
  }
}

// dst (rows x cols, row-major) = act(src + b) for src column-major rows x
// cols; b may be null (no bias). In 16 x 16 tiles, so that both sides stay
// in L1.
inline void TransposeBiasActivate(const float* __restrict src, int rows, int cols,
                                  const float* __restrict b, Activation act,
                                  float* __restrict dst) {
  constexpr int kT = 16;
  const bool relu = act == Activation::kRelu;
  for (int r0 = 0; r0 < rows; r0 += kT) {
    const int r1 = std::min(rows, r0 + kT);
    for (int c0 = 0; c0 < cols; c0 += kT) {
      const int c1 = std::min(cols, c0 + kT);
      for (int r = r0; r < r1; ++r) {
        float* __restrict d = dst + static_cast<size_t>(r) * cols;
        for (int c = c0; c < c1; ++c) {
          float v = src[static_cast<size_t>(c) * rows + r];
          if (b != nullptr) v += b[c];
          d[c] = relu ? std::max(v, 0.0f) : v;
        }
      }
    }
  }
}

// dy *= (y > 0), the ReLU backward done in place.
inline void MaskRelu(const float* __restrict y, size_t count, float* __restrict dy) {
  for (size_t i = 0; i < count; ++i) dy[i] = y[i] > 0.0f ? dy[i] : 0.0f;
}

// db (+)= column sums of dy (rows x cols), summed in row order.
inline void ColumnSums(const float* __restrict dy, int rows, int cols, bool accumulate,
                       float* __restrict db) {
  if (!accumulate) std::fill(db, db + cols, 0.0f);
  for (int r = 0; r < rows; ++r) {
    const float* row = dy + static_cast<size_t>(r) * cols;
    for (int j = 0; j < cols; ++j) db[j] += row[j];
  }
}

inline const char* ActName(Activation act) { return act == Activation::kRelu ? ",relu" : ""; }

}  // namespace layer_util
}  // namespace FEDSIM_NUMERIC_NS
}  // namespace fedsim

#endif  // FEDSIM_ML_LAYER_UTIL_H_
