// GpuNet (ml/gpu/gpu_net.h) over an executor: the launch sequence of every
// operation, written once. Instantiated for the CPU emulation
// (ml/gpu/host_net.cc) and for CUDA (ml/cuda/cuda_net.cu).
//
// An Exec provides:
//   void* Malloc(size_t bytes)  zeroed executor memory; nullptr on failure
//   void Free(void*)
//   void* HostMalloc(size_t), void HostFree(void*)   fast-copy host memory
//   void Upload(void* dst, const void* src, size_t), Download(...), Copy(...)
//   void Sync()
//   template <class F> void ForEach(int64_t n, const F& f)   f(i), i < n
//   void Gemm(const GemmArgs&)   out(c, i, j) = GemmDot(args, c, i, j)
//   std::string name() const, std::string status() const
#ifndef FEDSIM_ML_GPU_NET_IMPL_H_
#define FEDSIM_ML_GPU_NET_IMPL_H_

#include <algorithm>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "ml/gpu/gpu_net.h"
#include "ml/gpu/net_kernels.h"

namespace fedsim::gpu {

template <class Exec>
class NetImpl final : public GpuNet {
 public:
  // REQUIRES: clients > 0, max_rows > 0, spec from NetSpecFor (valid).
  NetImpl(Exec exec, NetSpec spec, int clients, int max_rows)
      : exec_(std::move(exec)), spec_(std::move(spec)), clients_(clients), rows_cap_(max_rows) {
    const int64_t c = clients_, r = rows_cap_;
    int64_t max_dim = spec_.input_dim;
    int64_t col = 0;
    for (const NetLayer& l : spec_.layers) {
      max_dim = std::max<int64_t>(max_dim, std::max(l.in_dim(), l.out_dim()));
      if (l.kind == NetLayer::Kind::kConv) {
        col = std::max<int64_t>(
            col, static_cast<int64_t>(l.in_h) * l.in_w * l.kernel * l.kernel * l.in_c);
      }
    }
    dbuf_stride_ = r * max_dim;
    col_stride_ = r * col;
    input_ = AllocArray<float>(c * r * spec_.input_dim);
    labels_ = AllocArray<int32_t>(c * r);
    for (const NetLayer& l : spec_.layers) {
      acts_.push_back(AllocArray<float>(c * r * l.out_dim()));
      args_.push_back(l.kind == NetLayer::Kind::kPool ? AllocArray<uint8_t>(c * r * l.out_dim())
                                                      : nullptr);
    }
    dlogits_ = AllocArray<float>(c * r * spec_.num_classes);
    dbuf_[0] = AllocArray<float>(c * dbuf_stride_);
    dbuf_[1] = AllocArray<float>(c * dbuf_stride_);
    if (col > 0) {
      col_ = AllocArray<float>(c * col_stride_);
      dcol_ = AllocArray<float>(c * col_stride_);
    }
    row_loss_ = AllocArray<double>(c * r);
    row_hit_ = AllocArray<uint8_t>(c * r);
    chunks_ = (static_cast<int64_t>(spec_.num_params) + kChunk - 1) / kChunk;
    chunk_sums_ = AllocArray<double>(c * chunks_);
    scale_ = AllocArray<float>(c);
  }

  ~NetImpl() override {
    for (void* p : owned_) exec_.Free(p);
  }

  const NetSpec& spec() const override { return spec_; }
  int clients() const override { return clients_; }
  int max_rows() const override { return rows_cap_; }
  std::string backend() const override { return exec_.name(); }
  std::string status() const override {
    if (!alloc_error_.empty()) return alloc_error_;
    return exec_.status();
  }

  void* Alloc(size_t bytes) override {
    void* p = exec_.Malloc(bytes);
    if (p == nullptr) {
      if (alloc_error_.empty()) {
        alloc_error_ = "out of " + exec_.name() + " memory allocating " + std::to_string(bytes) +
                       " bytes (" + std::to_string(clients_) + " clients of " + spec_.name +
                       " at " + std::to_string(rows_cap_) + " rows)";
      }
      return nullptr;
    }
    owned_.push_back(p);
    return p;
  }
  void Free(void* p) override {
    if (p == nullptr) return;
    auto it = std::find(owned_.begin(), owned_.end(), p);
    if (it == owned_.end()) return;
    owned_.erase(it);
    exec_.Free(p);
  }
  void* AllocHost(size_t bytes) override { return exec_.HostMalloc(bytes); }
  void FreeHost(void* p) override {
    if (p != nullptr) exec_.HostFree(p);
  }
  void Upload(void* dst, const void* src, size_t bytes) override { exec_.Upload(dst, src, bytes); }
  void Download(void* dst, const void* src, size_t bytes) override {
    exec_.Download(dst, src, bytes);
  }
  void Copy(void* dst, const void* src, size_t bytes) override { exec_.Copy(dst, src, bytes); }
  void Sync() override { exec_.Sync(); }

  float* input() override { return input_; }
  int32_t* labels() override { return labels_; }
  float* logits() override { return acts_.back(); }
  float* dlogits() override { return dlogits_; }

  void SetRows(const int* rows, int max_n, int active) override {
    rows_ = rows;
    max_n_ = max_n;
    active_ = active < 0 || active > clients_ ? clients_ : active;
  }

  void Forward(const float* params) override {
    if (!Ready()) return;
    const int64_t r = rows_cap_, p = static_cast<int64_t>(spec_.num_params);
    const float* x = input_;
    int64_t x_stride = r * spec_.input_dim;
    for (size_t li = 0; li < spec_.layers.size(); ++li) {
      const NetLayer& l = spec_.layers[li];
      float* y = acts_[li];
      const int64_t y_stride = r * l.out_dim();
      if (l.kind == NetLayer::Kind::kPool) {
        exec_.ForEach(active_ * int64_t{max_n_} * l.out_dim(),
                      PoolForwardFn{l.in_c, l.in_h, l.in_w, x, x_stride, y, y_stride, args_[li],
                                    int64_t{max_n_} * l.out_dim()});
      } else {
        GemmArgs g;
        const int out = l.out_c;
        int64_t rows_per_example = 1;
        if (l.kind == NetLayer::Kind::kDense) {
          g.a = x;
          g.a_batch = x_stride;
          g.a_row = l.in_dim();
          g.a_col = 1;
          g.m = max_n_;
          g.k = l.in_dim();
        } else {
          const ConvGeom geom = Geom(l);
          rows_per_example = geom.pixels();
          exec_.ForEach(active_ * int64_t{max_n_} * geom.pixels() * geom.patch(),
                        Im2ColFn{geom, x, x_stride, col_, col_stride_,
                                 int64_t{max_n_} * geom.pixels() * geom.patch()});
          g.a = col_;
          g.a_batch = col_stride_;
          g.a_row = geom.patch();
          g.a_col = 1;
          g.m = max_n_ * geom.pixels();
          g.k = geom.patch();
        }
        g.b = params + l.offset;
        g.b_batch = p;
        g.b_row = out;
        g.b_col = 1;
        g.out = y;
        g.c_batch = y_stride;
        g.c_row = out;
        g.batch = active_;
        g.n = out;
        exec_.Gemm(g);
        const int64_t b_off = static_cast<int64_t>(l.offset + l.num_params) - out;
        exec_.ForEach(active_ * int64_t{max_n_} * rows_per_example * out,
                      BiasActFn{y, y_stride, params, p, b_off,
                                int64_t{max_n_} * rows_per_example * out, out, l.relu});
      }
      x = y;
      x_stride = y_stride;
    }
  }

  void CrossEntropy(float* loss) override {
    if (!Ready()) return;
    exec_.ForEach(int64_t{active_} * rows_cap_,
                  SoftmaxRowsFn{logits(), labels_, rows_, rows_cap_, spec_.num_classes, row_loss_,
                                row_hit_, dlogits_});
    exec_.ForEach(active_,
                  ReduceRowsFn{row_loss_, row_hit_, rows_, rows_cap_, loss, nullptr, nullptr});
  }

  void AccumulateEval(double* loss_sum, int64_t* correct) override {
    if (!Ready()) return;
    exec_.ForEach(int64_t{active_} * rows_cap_,
                  SoftmaxRowsFn{logits(), labels_, rows_, rows_cap_, spec_.num_classes, row_loss_,
                                row_hit_, nullptr});
    exec_.ForEach(active_,
                  ReduceRowsFn{row_loss_, row_hit_, rows_, rows_cap_, nullptr, loss_sum, correct});
  }

  void Backward(const float* params, float* grad, float* dinput) override {
    if (!Ready()) return;
    const int64_t r = rows_cap_, p = static_cast<int64_t>(spec_.num_params);
    float* dy = dlogits_;
    int64_t dy_stride = r * spec_.num_classes;
    int next = 0;
    for (size_t li = spec_.layers.size(); li-- > 0;) {
      const NetLayer& l = spec_.layers[li];
      const float* x = li == 0 ? input_ : acts_[li - 1];
      const int64_t x_stride = r * l.in_dim();
      float* dx = nullptr;
      int64_t dx_stride = x_stride;
      if (li > 0) {
        dx = dbuf_[next];
        dx_stride = dbuf_stride_;
        next = 1 - next;
      } else {
        dx = dinput;
      }
      if (l.kind == NetLayer::Kind::kPool) {
        if (dx != nullptr) {
          exec_.ForEach(
              active_ * int64_t{max_n_} * l.in_dim(),
              PoolBackwardFn{l.in_c, l.in_h, l.in_w, dy, dy_stride, args_[li], r * l.out_dim(), dx,
                             dx_stride, int64_t{max_n_} * l.in_dim()});
        }
      } else {
        const int out = l.out_c;
        const bool conv = l.kind == NetLayer::Kind::kConv;
        const ConvGeom geom = Geom(l);
        const int pix = conv ? geom.pixels() : 1;
        if (l.relu) {
          exec_.ForEach(
              active_ * int64_t{max_n_} * pix * out,
              MaskReluFn{dy, dy_stride, acts_[li], r * l.out_dim(), int64_t{max_n_} * pix * out});
        }
        if (conv && grad != nullptr) {
          // The forward's columns were overwritten by later convolutions.
          exec_.ForEach(
              active_ * int64_t{max_n_} * pix * geom.patch(),
              Im2ColFn{geom, x, x_stride, col_, col_stride_, int64_t{max_n_} * pix * geom.patch()});
        }
        if (grad != nullptr) {
          GemmArgs g;  // dW = X^T dY over the client's rows
          if (conv) {
            g.a = col_;
            g.a_batch = col_stride_;
            g.a_row = 1;
            g.a_col = geom.patch();
            g.m = geom.patch();
            g.k = rows_cap_ * pix;
            g.k_scale = pix;
          } else {
            g.a = x;
            g.a_batch = x_stride;
            g.a_row = 1;
            g.a_col = l.in_dim();
            g.m = l.in_dim();
            g.k = rows_cap_;
          }
          g.k_count = rows_;
          g.b = dy;
          g.b_batch = dy_stride;
          g.b_row = out;
          g.b_col = 1;
          g.out = grad + l.offset;
          g.c_batch = p;
          g.c_row = out;
          g.batch = active_;
          g.n = out;
          exec_.Gemm(g);
          const int64_t b_off = static_cast<int64_t>(l.offset + l.num_params) - out;
          exec_.ForEach(int64_t{active_} * out,
                        ColumnSumFn{grad, p, b_off, dy, dy_stride, rows_, pix, out});
        }
        if (dx != nullptr) {
          GemmArgs g;  // dX = dY W^T (conv: into the columns, then col2im)
          g.a = dy;
          g.a_batch = dy_stride;
          g.a_row = out;
          g.a_col = 1;
          g.b = params + l.offset;
          g.b_batch = p;
          g.b_row = 1;
          g.b_col = out;
          g.batch = active_;
          g.m = max_n_ * pix;
          g.k = out;
          if (conv) {
            g.out = dcol_;
            g.c_batch = col_stride_;
            g.c_row = geom.patch();
            g.n = geom.patch();
            exec_.Gemm(g);
            exec_.ForEach(
                active_ * int64_t{max_n_} * l.in_dim(),
                Col2ImFn{geom, dcol_, col_stride_, dx, dx_stride, int64_t{max_n_} * l.in_dim()});
          } else {
            g.out = dx;
            g.c_batch = dx_stride;
            g.c_row = l.in_dim();
            g.n = l.in_dim();
            exec_.Gemm(g);
          }
        }
      }
      if (dx == nullptr) break;
      dy = dx;
      dy_stride = dx_stride;
    }
  }

  void Gather(const float* const* data_x, const int32_t* const* data_y,
              const int32_t* index) override {
    if (!Ready()) return;
    exec_.ForEach(active_ * int64_t{max_n_} * spec_.input_dim,
                  GatherFn{data_x, data_y, index, rows_, input_, labels_, rows_cap_,
                           spec_.input_dim, int64_t{max_n_} * spec_.input_dim});
  }

  void SgdStep(const SgdScalars& sgd, float* params, const float* grad, const float* anchor,
               float* velocity) override {
    if (!Ready()) return;
    const int64_t p = static_cast<int64_t>(spec_.num_params);
    exec_.ForEach(active_ * p, SgdFn{sgd, params, grad, anchor, velocity, rows_, p});
  }

  void SamPoint(double rho, const float* params, const float* grad, float* out) override {
    if (!Ready()) return;
    const int64_t p = static_cast<int64_t>(spec_.num_params);
    exec_.ForEach(active_ * chunks_, SquareChunksFn{grad, p, kChunk, chunks_, chunk_sums_});
    exec_.ForEach(active_, SamScaleFn{chunk_sums_, chunks_, rho, scale_});
    exec_.ForEach(active_ * p, SamPointFn{params, grad, scale_, rows_, out, p});
  }

  void AddLoss(const float* loss, double* sums) override {
    if (!Ready()) return;
    exec_.ForEach(active_, AddLossFn{loss, rows_, sums});
  }

  void Subtract(const float* a, const float* b, float* out, size_t n) override {
    if (!alloc_error_.empty()) return;
    exec_.ForEach(static_cast<int64_t>(n), SubtractFn{a, b, out});
  }

 private:
  static constexpr int64_t kChunk = 4096;

  bool Ready() const { return alloc_error_.empty() && rows_ != nullptr && max_n_ > 0; }

  static ConvGeom Geom(const NetLayer& l) {
    return ConvGeom{l.in_c, l.in_h, l.in_w, l.kernel, (l.kernel - 1) / 2, l.input_chw};
  }

  Exec exec_;
  NetSpec spec_;
  int clients_;
  int rows_cap_;
  std::string alloc_error_;
  std::vector<void*> owned_;
  const int* rows_ = nullptr;
  int max_n_ = 0;
  int active_ = 0;
  float* input_ = nullptr;
  int32_t* labels_ = nullptr;
  std::vector<float*> acts_;
  std::vector<uint8_t*> args_;
  float* dlogits_ = nullptr;
  float* dbuf_[2] = {nullptr, nullptr};
  int64_t dbuf_stride_ = 0;
  float* col_ = nullptr;
  float* dcol_ = nullptr;
  int64_t col_stride_ = 0;
  double* row_loss_ = nullptr;
  uint8_t* row_hit_ = nullptr;
  int64_t chunks_ = 0;
  double* chunk_sums_ = nullptr;
  float* scale_ = nullptr;
};

}  // namespace fedsim::gpu

#endif  // FEDSIM_ML_GPU_NET_IMPL_H_
