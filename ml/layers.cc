#include "ml/layers.h"

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstring>

#include "Eigen/Core"
#include "absl/strings/str_cat.h"

namespace fedsim {
namespace {

using RowMat = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
using MatMap = Eigen::Map<RowMat>;
using ConstMatMap = Eigen::Map<const RowMat>;

// Dense backward tiles of W: about 64 KiB, so that a tile's gradient, its
// weights and momentum stay in L1/L2 between the GEMMs and the SGD update.
constexpr int kDenseTileFloats = 1 << 14;

// im2col chunks are kept near 1 MiB so that the GEMM reads them from L2.
constexpr size_t kIm2ColChunkFloats = size_t{1} << 18;

void FillUniform(Rng& rng, double bound, float* p, size_t count) {
  for (size_t i = 0; i < count; ++i) p[i] = static_cast<float>(rng.Uniform(-bound, bound));
}

// y[r, :] = act(y[r, :] + b) for rows of width `cols`.
void AddBiasActivate(const float* __restrict b, int rows, int cols, Activation act,
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

// dy *= (y > 0), the ReLU backward done in place.
void MaskRelu(const float* __restrict y, size_t count, float* __restrict dy) {
  for (size_t i = 0; i < count; ++i) dy[i] = y[i] > 0.0f ? dy[i] : 0.0f;
}

// db (+)= column sums of dy (rows x cols), summed in row order.
void ColumnSums(const float* __restrict dy, int rows, int cols, bool accumulate,
                float* __restrict db) {
  if (!accumulate) std::fill(db, db + cols, 0.0f);
  for (int r = 0; r < rows; ++r) {
    const float* row = dy + static_cast<size_t>(r) * cols;
    for (int j = 0; j < cols; ++j) db[j] += row[j];
  }
}

const char* ActName(Activation act) { return act == Activation::kRelu ? ",relu" : ""; }

}  // namespace

// ---------------------------------------------------------------- Layer

void Layer::BackwardInto(const float* params, const float* x, const float* y, float* dy, int n,
                         GradSink& sink, float* dx) {
  const size_t np = NumParams();
  if (grad_scratch_.size() < np) grad_scratch_.resize(np);
  Backward(params, x, y, dy, n, grad_scratch_.data(), dx);
  if (np > 0) sink.Consume(0, grad_scratch_.data(), np);
}

// ---------------------------------------------------------------- Dense

Dense::Dense(int in, int out, Activation act)
    : in_(in), out_(out), act_(act), tile_rows_(std::clamp(kDenseTileFloats / out, 1, in)) {}

std::string Dense::Name() const { return absl::StrCat("dense(", in_, "x", out_, ActName(act_), ")"); }

void Dense::Init(Rng& rng, std::span<float> params) const {
  const double bound = act_ == Activation::kRelu ? std::sqrt(6.0 / in_)
                                                 : std::sqrt(6.0 / (in_ + out_));
  const size_t nw = static_cast<size_t>(in_) * out_;
  FillUniform(rng, bound, params.data(), nw);
  std::fill(params.begin() + nw, params.end(), 0.0f);
}

void Dense::Forward(const float* params, const float* x, int n, float* y) {
  ConstMatMap xm(x, n, in_);
  ConstMatMap w(params, in_, out_);
  MatMap ym(y, n, out_);
  ym.noalias() = xm * w;
  AddBiasActivate(params + static_cast<size_t>(in_) * out_, n, out_, act_, y);
}

void Dense::Backward(const float* params, const float* x, const float* y, float* dy, int n,
                     float* dparams, float* dx) {
  BackwardTiled(params, x, y, dy, n, dparams, nullptr, dx);
}

void Dense::BackwardInto(const float* params, const float* x, const float* y, float* dy, int n,
                         GradSink& sink, float* dx) {
  const size_t need = static_cast<size_t>(std::max(tile_rows_, 1)) * out_;
  if (tile_.size() < need) tile_.resize(need);
  BackwardTiled(params, x, y, dy, n, nullptr, &sink, dx);
}

void Dense::BackwardTiled(const float* params, const float* x, const float* y, float* dy, int n,
                          float* dparams, GradSink* sink, float* dx) {
  using Stride = Eigen::OuterStride<>;
  using ConstBlock = Eigen::Map<const RowMat, 0, Stride>;
  using Block = Eigen::Map<RowMat, 0, Stride>;
  const size_t nw = static_cast<size_t>(in_) * out_;
  if (act_ == Activation::kRelu) MaskRelu(y, static_cast<size_t>(n) * out_, dy);
  ConstMatMap dym(dy, n, out_);
  for (int r0 = 0; r0 < in_; r0 += tile_rows_) {
    const int rows = std::min(tile_rows_, in_ - r0);
    const size_t off = static_cast<size_t>(r0) * out_;
    ConstMatMap w(params + off, rows, out_);
    // The input gradient of these rows first: the sink may then overwrite them.
    if (dx != nullptr) {
      Block dxm(dx + r0, n, rows, Stride(in_));
      dxm.noalias() = dym * w.transpose();
    }
    ConstBlock xm(x + r0, n, rows, Stride(in_));
    float* g = sink != nullptr ? tile_.data() : dparams + off;
    MatMap dw(g, rows, out_);
    dw.noalias() = xm.transpose() * dym;
    if (sink != nullptr) sink->Consume(off, g, static_cast<size_t>(rows) * out_);
  }
  float* db = sink != nullptr ? tile_.data() : dparams + nw;
  ColumnSums(dy, n, out_, /*accumulate=*/false, db);
  if (sink != nullptr) sink->Consume(nw, db, static_cast<size_t>(out_));
}

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

// ---------------------------------------------------------------- Conv2d

Conv2d::Conv2d(TensorShape in, int out_channels, int kernel, Activation act, bool input_chw)
    : in_(in),
      out_c_(out_channels),
      k_(kernel),
      pad_((kernel - 1) / 2),
      act_(act),
      patch_(kernel * kernel * in.channels),
      pixels_(in.height * in.width) {
  const size_t per_example = static_cast<size_t>(pixels_) * patch_;
  chunk_ = static_cast<int>(std::max<size_t>(1, kIm2ColChunkFloats / per_example));
  // With one channel the two layouts coincide; the HWC path is the fast one.
  if (input_chw && in.channels > 1) {
    cs_ = in.height * in.width;
    ys_ = in.width;
    xs_ = 1;
  } else {
    cs_ = 1;
    ys_ = in.width * in.channels;
    xs_ = in.channels;
  }
}

std::string Conv2d::Name() const {
  return absl::StrCat("conv", k_, "x", k_, "(", in_.channels, "x", in_.height, "x", in_.width,
                      "->", out_c_, ActName(act_), ")");
}

void Conv2d::Init(Rng& rng, std::span<float> params) const {
  const double fan_in = patch_;
  const double fan_out = static_cast<double>(k_) * k_ * out_c_;
  const double bound = act_ == Activation::kRelu ? std::sqrt(6.0 / fan_in)
                                                 : std::sqrt(6.0 / (fan_in + fan_out));
  const size_t nw = static_cast<size_t>(patch_) * out_c_;
  FillUniform(rng, bound, params.data(), nw);
  std::fill(params.begin() + nw, params.end(), 0.0f);
}

void Conv2d::Im2Col(const float* x, int count) {
  const int h = in_.height, w = in_.width, c = in_.channels, k = k_;
  const int in_dim = in_.dim();
  const size_t need = static_cast<size_t>(count) * pixels_ * patch_;
  if (col_.size() < need) col_.resize(need);
  float* row = col_.data();
  for (int s = 0; s < count; ++s) {
    const float* base = x + static_cast<size_t>(s) * in_dim;
    for (int oy = 0; oy < h; ++oy) {
      for (int ox = 0; ox < w; ++ox, row += patch_) {
        // Valid kernel columns for this output column: ix = ox + kx - pad in [0, w).
        const int kx0 = std::max(0, pad_ - ox);
        const int kx1 = std::min(k, w - ox + pad_);
        for (int ky = 0; ky < k; ++ky) {
          float* dst = row + ky * k * c;
          const int iy = oy + ky - pad_;
          if (iy < 0 || iy >= h || kx0 >= kx1) {
            std::memset(dst, 0, sizeof(float) * k * c);
            continue;
          }
          if (c == 1) {
            // One channel (the first layer): rows of k floats, too short for
            // memcpy/memset calls to pay off.
            const float* src = base + iy * ys_ + (ox + kx0 - pad_);
            for (int kx = 0; kx < kx0; ++kx) dst[kx] = 0.0f;
            for (int kx = kx0; kx < kx1; ++kx) dst[kx] = src[kx - kx0];
            for (int kx = kx1; kx < k; ++kx) dst[kx] = 0.0f;
            continue;
          }
          if (kx0 > 0) std::memset(dst, 0, sizeof(float) * kx0 * c);
          if (cs_ == 1) {
            // HWC: the valid (kx, c) run is contiguous in the input.
            std::memcpy(dst + kx0 * c, base + iy * ys_ + (ox + kx0 - pad_) * xs_,
                        sizeof(float) * (kx1 - kx0) * c);
          } else {
            for (int kx = kx0; kx < kx1; ++kx) {
              const float* src = base + iy * ys_ + (ox + kx - pad_) * xs_;
              for (int ch = 0; ch < c; ++ch) dst[kx * c + ch] = src[ch * cs_];
            }
          }
          if (kx1 < k) std::memset(dst + kx1 * c, 0, sizeof(float) * (k - kx1) * c);
        }
      }
    }
  }
}

void Conv2d::Col2Im(int count, float* dx) const {
  const int h = in_.height, w = in_.width, c = in_.channels, k = k_;
  const int in_dim = in_.dim();
  const float* row = dcol_.data();
  for (int s = 0; s < count; ++s) {
    float* base = dx + static_cast<size_t>(s) * in_dim;
    for (int oy = 0; oy < h; ++oy) {
      for (int ox = 0; ox < w; ++ox, row += patch_) {
        const int kx0 = std::max(0, pad_ - ox);
        const int kx1 = std::min(k, w - ox + pad_);
        for (int ky = 0; ky < k; ++ky) {
          const int iy = oy + ky - pad_;
          if (iy < 0 || iy >= h) continue;
          const float* src = row + ky * k * c;
          if (cs_ == 1) {
            float* dst = base + iy * ys_ + (ox + kx0 - pad_) * xs_;
            const float* s = src + kx0 * c;
            const int len = (kx1 - kx0) * c;
            for (int j = 0; j < len; ++j) dst[j] += s[j];
          } else {
            for (int kx = kx0; kx < kx1; ++kx) {
              float* dst = base + iy * ys_ + (ox + kx - pad_) * xs_;
              for (int ch = 0; ch < c; ++ch) dst[ch * cs_] += src[kx * c + ch];
            }
          }
        }
      }
    }
  }
}

void Conv2d::Forward(const float* params, const float* x, int n, float* y) {
  ConstMatMap wm(params, patch_, out_c_);
  const float* b = params + static_cast<size_t>(patch_) * out_c_;
  const int in_dim = in_.dim();
  const size_t out_per_example = static_cast<size_t>(pixels_) * out_c_;
  for (int s0 = 0; s0 < n; s0 += chunk_) {
    const int count = std::min(chunk_, n - s0);
    Im2Col(x + static_cast<size_t>(s0) * in_dim, count);
    const int rows = count * pixels_;
    ConstMatMap colm(col_.data(), rows, patch_);
    float* yc = y + s0 * out_per_example;
    MatMap ym(yc, rows, out_c_);
    ym.noalias() = colm * wm;
    AddBiasActivate(b, rows, out_c_, act_, yc);
  }
}

void Conv2d::Backward(const float* params, const float* x, const float* y, float* dy, int n,
                      float* dparams, float* dx) {
  ConstMatMap wm(params, patch_, out_c_);
  MatMap dwm(dparams, patch_, out_c_);
  float* db = dparams + static_cast<size_t>(patch_) * out_c_;
  const int in_dim = in_.dim();
  const size_t out_per_example = static_cast<size_t>(pixels_) * out_c_;
  if (dx != nullptr) std::fill(dx, dx + static_cast<size_t>(n) * in_dim, 0.0f);
  for (int s0 = 0; s0 < n; s0 += chunk_) {
    const int count = std::min(chunk_, n - s0);
    const int rows = count * pixels_;
    float* dyc = dy + s0 * out_per_example;
    if (act_ == Activation::kRelu) {
      MaskRelu(y + s0 * out_per_example, static_cast<size_t>(rows) * out_c_, dyc);
    }
    // Recomputing im2col is cheaper than keeping the whole batch's columns:
    // they would not fit in cache.
    Im2Col(x + static_cast<size_t>(s0) * in_dim, count);
    ConstMatMap colm(col_.data(), rows, patch_);
    ConstMatMap dym(dyc, rows, out_c_);
    if (s0 == 0) {
      dwm.noalias() = colm.transpose() * dym;
    } else {
      dwm.noalias() += colm.transpose() * dym;
    }
    ColumnSums(dyc, rows, out_c_, /*accumulate=*/s0 != 0, db);
    if (dx != nullptr) {
      const size_t need = static_cast<size_t>(rows) * patch_;
      if (dcol_.size() < need) dcol_.resize(need);
      MatMap dcolm(dcol_.data(), rows, patch_);
      dcolm.noalias() = dym * wm.transpose();
      Col2Im(count, dx + static_cast<size_t>(s0) * in_dim);
    }
  }
}

// ---------------------------------------------------------------- MaxPool2

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
    for (int j = 0; j < k; ++j) sum += std::exp(l[j] - m);
    const int label = labels[i];
    loss += static_cast<double>(m) + std::log(static_cast<double>(sum)) - l[label];
    hits += arg == label;
    if (dlogits != nullptr) {
      float* d = dlogits + static_cast<size_t>(i) * k;
      const float scale = inv_n / sum;
      for (int j = 0; j < k; ++j) d[j] = std::exp(l[j] - m) * scale;
      d[label] -= inv_n;
    }
  }
  if (correct != nullptr) *correct += hits;
  return loss;
}

}  // namespace fedsim
