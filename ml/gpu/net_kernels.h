// The per-element bodies of every GpuNet operation (ml/gpu/gpu_net.h), one
// functor per launch: an executor calls f(i) for i in [0, n), in any order
// and in parallel (ml/gpu/exec_host.h loops, ml/cuda/cuda_exec.cuh launches
// a grid). Each i writes only its own outputs, and every sum runs in a fixed
// order inside one i, so the results do not depend on the executor.
//
// Buffers are per client with a stride: element e of client c of a buffer
// with stride s is buf[c * s + e]. Functors that cover "the first max_n rows
// of every client" decode i as c = i / per_client, e = i % per_client.
#ifndef FEDSIM_ML_GPU_NET_KERNELS_H_
#define FEDSIM_ML_GPU_NET_KERNELS_H_

#include <stdint.h>

#include "ml/gpu/gpu_math.h"
#include "ml/gpu/hd.h"

namespace fedsim::gpu {

// y = act(y + b) on rows of width `cols`; b is the bias at params + b_off.
struct BiasActFn {
  float* y;
  int64_t y_stride;
  const float* params;
  int64_t p_stride;
  int64_t b_off;
  int64_t per_client;  // max_n * rows-per-example * cols
  int cols;
  bool relu;
  FEDSIM_HD void operator()(int64_t i) const {
    const int64_t c = i / per_client, e = i % per_client;
    float v = y[c * y_stride + e] + params[c * p_stride + b_off + e % cols];
    if (relu) v = v > 0.0f ? v : 0.0f;
    y[c * y_stride + e] = v;
  }
};

// dy = y > 0 ? dy : 0 (the fused ReLU's backward).
struct MaskReluFn {
  float* dy;
  int64_t dy_stride;
  const float* y;
  int64_t y_stride;
  int64_t per_client;
  FEDSIM_HD void operator()(int64_t i) const {
    const int64_t c = i / per_client, e = i % per_client;
    if (!(y[c * y_stride + e] > 0.0f)) dy[c * dy_stride + e] = 0.0f;
  }
};

// db[j] = sum of dy[r][j] over the client's rows (rows[c] * scale of them),
// in row order: the bias gradient. One i per (client, column).
struct ColumnSumFn {
  float* grad;
  int64_t p_stride;
  int64_t b_off;
  const float* dy;
  int64_t dy_stride;
  const int* rows;
  int scale;
  int cols;
  FEDSIM_HD void operator()(int64_t i) const {
    const int64_t c = i / cols;
    const int j = static_cast<int>(i % cols);
    const int64_t n = static_cast<int64_t>(rows[c]) * scale;
    const float* d = dy + c * dy_stride + j;
    float s = 0.0f;
    for (int64_t r = 0; r < n; ++r) s += d[r * cols];
    grad[c * p_stride + b_off + j] = s;
  }
};

// The geometry of a k x k "same" convolution, stride 1.
struct ConvGeom {
  int in_c, h, w, k, pad;
  bool input_chw;
  FEDSIM_HD int patch() const { return k * k * in_c; }
  FEDSIM_HD int pixels() const { return h * w; }
  // Offset of input element (channel, y, x) inside one example.
  FEDSIM_HD int64_t InputAt(int ch, int y, int x) const {
    return input_chw ? (static_cast<int64_t>(ch) * h + y) * w + x
                     : (static_cast<int64_t>(y) * w + x) * in_c + ch;
  }
};

// col[c][r][pixel][(ky, kx, ch)] = the input under that kernel tap, or 0
// outside the image.
struct Im2ColFn {
  ConvGeom g;
  const float* x;
  int64_t x_stride;
  float* col;
  int64_t col_stride;
  int64_t per_client;  // max_n * pixels * patch
  FEDSIM_HD void operator()(int64_t i) const {
    const int64_t c = i / per_client, e = i % per_client;
    const int patch = g.patch();
    const int q = static_cast<int>(e % patch);
    const int64_t rp = e / patch;  // r * pixels + pixel
    const int pixel = static_cast<int>(rp % g.pixels());
    const int64_t r = rp / g.pixels();
    const int ch = q % g.in_c, tap = q / g.in_c;
    const int ky = tap / g.k, kx = tap % g.k;
    const int iy = pixel / g.w + ky - g.pad, ix = pixel % g.w + kx - g.pad;
    float v = 0.0f;
    if (iy >= 0 && iy < g.h && ix >= 0 && ix < g.w) {
      v = x[c * x_stride + r * (static_cast<int64_t>(g.in_c) * g.pixels()) + g.InputAt(ch, iy, ix)];
    }
    col[c * col_stride + e] = v;
  }
};

// dx[input element] = the sum, over the taps (ky, kx) in order, of the dcol
// entries that read it: col2im as a gather, without atomics.
struct Col2ImFn {
  ConvGeom g;
  const float* dcol;
  int64_t col_stride;
  float* dx;
  int64_t dx_stride;
  int64_t per_client;  // max_n * in_c * pixels
  FEDSIM_HD void operator()(int64_t i) const {
    const int64_t c = i / per_client, e = i % per_client;
    const int64_t dim = static_cast<int64_t>(g.in_c) * g.pixels();
    const int64_t r = e / dim;
    const int64_t at = e % dim;
    int ch, y, x;
    if (g.input_chw) {
      ch = static_cast<int>(at / g.pixels());
      y = static_cast<int>(at % g.pixels()) / g.w;
      x = static_cast<int>(at % g.pixels()) % g.w;
    } else {
      ch = static_cast<int>(at % g.in_c);
      y = static_cast<int>(at / g.in_c) / g.w;
      x = static_cast<int>(at / g.in_c) % g.w;
    }
    const int patch = g.patch();
    const float* base = dcol + c * col_stride + r * g.pixels() * static_cast<int64_t>(patch);
    float s = 0.0f;
    for (int ky = 0; ky < g.k; ++ky) {
      const int oy = y - ky + g.pad;
      if (oy < 0 || oy >= g.h) continue;
      for (int kx = 0; kx < g.k; ++kx) {
        const int ox = x - kx + g.pad;
        if (ox < 0 || ox >= g.w) continue;
        s += base[(static_cast<int64_t>(oy) * g.w + ox) * patch + (ky * g.k + kx) * g.in_c + ch];
      }
    }
    dx[c * dx_stride + e] = s;
  }
};

// 2 x 2 max pooling on HWC input: y and the winner (0..3) per output.
struct PoolForwardFn {
  int ch, h, w;  // input shape
  const float* x;
  int64_t x_stride;
  float* y;
  int64_t y_stride;
  uint8_t* arg;
  int64_t per_client;  // max_n * (h/2) * (w/2) * ch
  FEDSIM_HD void operator()(int64_t i) const {
    const int64_t c = i / per_client, e = i % per_client;
    const int oh = h / 2, ow = w / 2;
    const int64_t out_dim = static_cast<int64_t>(oh) * ow * ch;
    const int64_t r = e / out_dim, at = e % out_dim;
    const int k = static_cast<int>(at % ch);
    const int ox = static_cast<int>((at / ch) % ow), oy = static_cast<int>((at / ch) / ow);
    const float* p = x + c * x_stride + r * (static_cast<int64_t>(h) * w * ch);
    const int64_t row = static_cast<int64_t>(w) * ch;
    const int64_t p00 = (2 * oy) * row + (2 * ox) * ch + k;
    const float v[4] = {p[p00], p[p00 + ch], p[p00 + row], p[p00 + row + ch]};
    const int a = MaxPoolArg(v[0], v[1], v[2], v[3]);
    y[c * y_stride + e] = v[a];
    arg[c * y_stride + e] = static_cast<uint8_t>(a);
  }
};

// dx[input] = dy[its pool output] if it won that output, else 0 (dropped
// odd rows and columns get 0).
struct PoolBackwardFn {
  int ch, h, w;
  const float* dy;
  int64_t dy_stride;
  const uint8_t* arg;
  int64_t arg_stride;
  float* dx;
  int64_t dx_stride;
  int64_t per_client;  // max_n * h * w * ch
  FEDSIM_HD void operator()(int64_t i) const {
    const int64_t c = i / per_client, e = i % per_client;
    const int64_t in_dim = static_cast<int64_t>(h) * w * ch;
    const int64_t r = e / in_dim, at = e % in_dim;
    const int k = static_cast<int>(at % ch);
    const int x = static_cast<int>((at / ch) % w), y = static_cast<int>((at / ch) / w);
    const int oh = h / 2, ow = w / 2;
    float v = 0.0f;
    if (y / 2 < oh && x / 2 < ow) {
      const int64_t out = r * (static_cast<int64_t>(oh) * ow * ch) +
                          (static_cast<int64_t>(y / 2) * ow + x / 2) * ch + k;
      if (arg[c * arg_stride + out] == (y % 2) * 2 + (x % 2)) v = dy[c * dy_stride + out];
    }
    dx[c * dx_stride + e] = v;
  }
};

// Per row: its loss and hit (rows < rows[c]) and d (mean loss) / d logits
// (when d is not null; zero on rows past rows[c]). One i per (client, row
// < max_rows).
struct SoftmaxRowsFn {
  const float* logits;
  const int32_t* labels;
  const int* rows;
  int max_rows;
  int k;
  double* row_loss;  // [C x max_rows]
  uint8_t* row_hit;  // [C x max_rows]
  float* d;          // [C x max_rows x k] or null
  FEDSIM_HD void operator()(int64_t i) const {
    const int64_t c = i / max_rows;
    const int r = static_cast<int>(i % max_rows);
    const int n = rows[c];
    float* dr = d != nullptr ? d + i * k : nullptr;
    if (r >= n) {
      if (dr != nullptr) {
        for (int j = 0; j < k; ++j) dr[j] = 0.0f;
      }
      return;
    }
    bool hit = false;
    row_loss[i] = SoftmaxRow(logits + i * k, k, labels[i], 1.0f / static_cast<float>(n), dr, &hit);
    row_hit[i] = hit ? 1 : 0;
  }
};

// Per client: the mean of its row losses (loss != null), and/or its summed
// loss and hits added to loss_sum and correct (eval). Rows in order.
struct ReduceRowsFn {
  const double* row_loss;
  const uint8_t* row_hit;
  const int* rows;
  int max_rows;
  float* loss;
  double* loss_sum;
  int64_t* correct;
  FEDSIM_HD void operator()(int64_t c) const {
    const int n = rows[c];
    if (n == 0) return;
    double s = 0.0;
    int64_t hits = 0;
    for (int r = 0; r < n; ++r) {
      s += row_loss[c * max_rows + r];
      hits += row_hit[c * max_rows + r];
    }
    if (loss != nullptr) loss[c] = static_cast<float>(s / n);
    if (loss_sum != nullptr) {
      loss_sum[c] += s;
      correct[c] += hits;
    }
  }
};

// input()/labels() rows from a client's rows of a data buffer.
struct GatherFn {
  const float* const* data_x;  // per client
  const int32_t* const* data_y;
  const int32_t* index;
  const int* rows;
  float* x;
  int32_t* y;
  int max_rows;
  int dim;
  int64_t per_client;  // max_n * dim
  FEDSIM_HD void operator()(int64_t i) const {
    const int64_t c = i / per_client, e = i % per_client;
    const int r = static_cast<int>(e / dim), j = static_cast<int>(e % dim);
    if (r >= rows[c]) return;
    const int64_t src = index[c * max_rows + r];
    x[(c * max_rows + r) * dim + j] = data_x[c][src * dim + j];
    if (j == 0) y[c * max_rows + r] = data_y[c][src];
  }
};

struct SgdFn {
  SgdScalars s;
  float* params;
  const float* grad;
  const float* anchor;
  float* velocity;
  const int* rows;
  int64_t p;
  FEDSIM_HD void operator()(int64_t i) const {
    if (rows[i / p] == 0) return;
    SgdElement(s, grad[i], anchor != nullptr ? anchor[i] : 0.0f, params + i,
               velocity != nullptr ? velocity + i : nullptr);
  }
};

// Sums of squares of fixed chunks of each client's gradient, in index order.
struct SquareChunksFn {
  const float* grad;
  int64_t p;
  int64_t chunk;
  int64_t chunks;  // per client
  double* out;     // [C x chunks]
  FEDSIM_HD void operator()(int64_t i) const {
    const int64_t c = i / chunks, b = i % chunks;
    const int64_t lo = b * chunk, hi = lo + chunk < p ? lo + chunk : p;
    double s = 0.0;
    for (int64_t j = lo; j < hi; ++j) {
      const double g = grad[c * p + j];
      s += g * g;
    }
    out[i] = s;
  }
};

// scale[c] = rho / (sqrt(sum of the client's chunks, in order) + 1e-12).
struct SamScaleFn {
  const double* chunk_sums;
  int64_t chunks;
  double rho;
  float* scale;
  FEDSIM_HD void operator()(int64_t c) const {
    double s = 0.0;
    for (int64_t b = 0; b < chunks; ++b) s += chunk_sums[c * chunks + b];
    scale[c] = static_cast<float>(rho / (sqrt(s) + 1e-12));
  }
};

struct SamPointFn {
  const float* params;
  const float* grad;
  const float* scale;
  const int* rows;
  float* out;
  int64_t p;
  FEDSIM_HD void operator()(int64_t i) const {
    const int64_t c = i / p;
    if (rows[c] == 0) return;
    const float step = scale[c] * grad[i];
    out[i] = params[i] + step;
  }
};

struct AddLossFn {
  const float* loss;
  const int* rows;
  double* sums;
  FEDSIM_HD void operator()(int64_t c) const {
    if (rows[c] > 0) sums[c] += static_cast<double>(loss[c]);
  }
};

struct SubtractFn {
  const float* a;
  const float* b;
  float* out;
  FEDSIM_HD void operator()(int64_t i) const { out[i] = a[i] - b[i]; }
};

}  // namespace fedsim::gpu

#endif  // FEDSIM_ML_GPU_NET_KERNELS_H_
