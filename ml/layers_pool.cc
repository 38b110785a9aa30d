// 2 x 2 max pooling.
#include <bit>
#include <cstdint>

#include "ml/layers.h"

namespace fedsim {
inline namespace FEDSIM_NUMERIC_NS {

void MaxPool2::Forward(const float*, const float* x, int n, float* y) {
  const int c = in_.channels, w = in_.width;
  const int oh = in_.height / 2, ow = in_.width / 2;
  const size_t out_count = static_cast<size_t>(n) * oh * ow * c;
  if (argmax_.size() < out_count) argmax_.resize(out_count);
  uint8_t* am = argmax_.data();
  const size_t row_stride = static_cast<size_t>(w) * c;
  for (int s = 0; s < n; ++s) {
    const float* base = x + static_cast<size_t>(s) * in_.dim();
    for (int oy = 0; oy < oh; ++oy) {
      for (int ox = 0; ox < ow; ++ox, y += c, am += c) {
        const float* p00 = base + (2 * oy) * row_stride + (2 * ox) * c;
        const float* p01 = p00 + c;
        const float* p10 = p00 + row_stride;
        const float* p11 = p10 + c;
        for (int ch = 0; ch < c; ++ch) {
          float m = p00[ch];
          uint8_t a = 0;
          if (p01[ch] > m) { m = p01[ch]; a = 1; }
          if (p10[ch] > m) { m = p10[ch]; a = 2; }
          if (p11[ch] > m) { m = p11[ch]; a = 3; }
          y[ch] = m;
          am[ch] = a;
        }
      }
    }
  }
}

void MaxPool2::Backward(const float*, const float*, const float*, float* dy, int n, float*,
                        float* dx) {
  if (dx == nullptr) return;
  const int c = in_.channels, w = in_.width;
  const int oh = in_.height / 2, ow = in_.width / 2;
  // Odd trailing rows/columns receive no gradient; otherwise every input
  // element is written below.
  if ((in_.height & 1) || (in_.width & 1)) {
    std::fill(dx, dx + static_cast<size_t>(n) * in_.dim(), 0.0f);
  }
  const uint8_t* am = argmax_.data();
  const size_t row_stride = static_cast<size_t>(w) * c;
  for (int s = 0; s < n; ++s) {
    float* base = dx + static_cast<size_t>(s) * in_.dim();
    for (int oy = 0; oy < oh; ++oy) {
      for (int ox = 0; ox < ow; ++ox, dy += c, am += c) {
        float* __restrict p00 = base + (2 * oy) * row_stride + (2 * ox) * c;
        float* __restrict p01 = p00 + c;
        float* __restrict p10 = p00 + row_stride;
        float* __restrict p11 = p10 + c;
        const float* __restrict g = dy;
        const uint8_t* __restrict a = am;
        // Branch-free selects (the argmax is data-dependent, branches would
        // mispredict), so that the loop vectorizes.
        for (int ch = 0; ch < c; ++ch) {
          const uint32_t gc = std::bit_cast<uint32_t>(g[ch]);
          const uint32_t ac = a[ch];
          p00[ch] = std::bit_cast<float>(gc & (0u - static_cast<uint32_t>(ac == 0)));
          p01[ch] = std::bit_cast<float>(gc & (0u - static_cast<uint32_t>(ac == 1)));
          p10[ch] = std::bit_cast<float>(gc & (0u - static_cast<uint32_t>(ac == 2)));
          p11[ch] = std::bit_cast<float>(gc & (0u - static_cast<uint32_t>(ac == 3)));
        }
      }
    }
  }
}

}  // namespace FEDSIM_NUMERIC_NS
}  // namespace fedsim
