// The GPU backend's network: C clients' models of one architecture side by
// side, trained and evaluated with one launch sequence for all C. The same
// code runs on two executors: the GPU (ml/cuda/cuda_net.cu) and a
// CPU emulation (ml/gpu/host_net.cc) that runs the very same per-element
// functions in loops, so that every machine tests the backend's logic.
//
// Memory: every pointer a GpuNet hands out or takes is executor memory
// (device memory on the GPU, host memory in the emulation); Upload and
// Download move bytes across. Buffers are per client with fixed strides:
// params, grads and the like are [C x num_params()] floats; inputs are
// [C x max_rows() x input_dim] floats; labels [C x max_rows()] int32.
//
// Masking: a call works on rows [0, rows[c]) of client c, where rows is a
// device array of C ints set by SetRows; a client with 0 rows is idle in
// that call (its parameters and sums are left alone, its gradient is zero). Rows past
// rows[c] are never read into a client's gradients or sums, so clients with
// fewer examples are masked, not padded with fake data, and each client's
// result does not depend on who shares the batch (bit-identical to a
// one-client net).
//
// Determinism: no atomics; every reduction sums in a fixed order. Errors on
// the GPU are sticky: after one, calls do nothing and status() says what
// failed.
//
// Thread safety: one thread at a time per GpuNet (each holds its own stream
// and workspaces); distinct GpuNets may run concurrently.
#ifndef FEDSIM_ML_GPU_GPU_NET_H_
#define FEDSIM_ML_GPU_GPU_NET_H_

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "ml/gpu/gpu_math.h"

namespace fedsim::gpu {

// One layer of a network: dense (y = act(x W + b), W in x out), conv (k x k,
// stride 1, "same" padding, HWC output, weights (ky, kx, c) x out, then the
// bias) or pool (2 x 2 max, stride 2, HWC). The layouts of ml/layers.h, so
// that parameter vectors move between backends unchanged.
struct NetLayer {
  enum class Kind { kDense, kConv, kPool };
  Kind kind = Kind::kDense;
  int in_c = 1, in_h = 1, in_w = 1;  // input shape (dense: in_c = width)
  int out_c = 1, out_h = 1, out_w = 1;
  int kernel = 1;          // conv only
  bool relu = false;       // dense and conv: a ReLU fused at the end
  bool input_chw = false;  // conv only: the input is channels-first
  size_t offset = 0;       // first parameter in the flat vector
  size_t num_params = 0;
  int in_dim() const { return in_c * in_h * in_w; }
  int out_dim() const { return out_c * out_h * out_w; }
};

struct NetSpec {
  std::vector<NetLayer> layers;
  int input_dim = 0;
  int num_classes = 0;
  size_t num_params = 0;
  std::string name;  // "mlp(784-200-200-10)", for logs
};

class GpuNet {
 public:
  virtual ~GpuNet() = default;

  virtual const NetSpec& spec() const = 0;
  virtual int clients() const = 0;
  virtual int max_rows() const = 0;
  size_t num_params() const { return spec().num_params; }
  // "cuda:0 (NVIDIA H200, sm_90)" or "host emulation".
  virtual std::string backend() const = 0;
  // Empty while every call so far succeeded; else the first failure.
  virtual std::string status() const = 0;

  // ---- memory (executor memory, zeroed, owned by the net until it dies)
  // nullptr (and status() set) when the executor is out of memory.
  virtual void* Alloc(size_t bytes) = 0;
  // Frees memory from Alloc (null is ignored).
  virtual void Free(void* p) = 0;
  // Host memory that the executor copies from and to fastest (page-locked
  // on a GPU); nullptr when out of memory. FreeHost frees it.
  virtual void* AllocHost(size_t bytes) = 0;
  virtual void FreeHost(void* p) = 0;
  template <class T>
  T* AllocArray(size_t n) {
    return static_cast<T*>(Alloc(n * sizeof(T)));
  }
  virtual void Upload(void* dst, const void* src, size_t bytes) = 0;
  // Waits for the work queued before it.
  virtual void Download(void* dst, const void* src, size_t bytes) = 0;
  virtual void Copy(void* dst, const void* src, size_t bytes) = 0;
  // Waits for every queued call.
  virtual void Sync() = 0;

  // ---- the net's own buffers
  virtual float* input() = 0;     // [C x max_rows x input_dim]
  virtual int32_t* labels() = 0;  // [C x max_rows]
  virtual float* logits() = 0;    // [C x max_rows x num_classes]
  virtual float* dlogits() = 0;   // [C x max_rows x num_classes]

  // Rows per client for the calls that follow: `rows` is a device array of
  // C ints (each <= max_rows), `max_n` their maximum (host side, sizes the
  // launches). Only clients [0, active) take part (-1: all C), so that a
  // batch that is not full costs only its own clients. The array must stay
  // valid while the calls run.
  virtual void SetRows(const int* rows, int max_n, int active = -1) = 0;

  // Logits of input() at params ([C x P]).
  virtual void Forward(const float* params) = 0;
  // Mean softmax cross-entropy of each client's logits against labels():
  // loss[c] (a device float), and dlogits() = d loss / d logits (zero on
  // rows past rows[c]).
  virtual void CrossEntropy(float* loss) = 0;
  // Back-propagates dlogits() through the last Forward (same params, same
  // rows): grad ([C x P]) = d loss / d params if not null; dinput
  // ([C x max_rows x input_dim]) = d loss / d input if not null.
  virtual void Backward(const float* params, float* grad, float* dinput) = 0;
  // Adds each client's summed loss and correct count over its rows of the
  // last Forward to loss_sum[c] and correct[c] (device arrays).
  virtual void AccumulateEval(double* loss_sum, int64_t* correct) = 0;

  // ---- the training loop's element-wise steps
  // input()/labels() row r of client c = row index[c * max_rows + r] of
  // client c's data: data_x[c] (rows of input_dim floats) and data_y[c]
  // (labels), for r < rows[c]. data_x, data_y and index are device arrays.
  virtual void Gather(const float* const* data_x, const int32_t* const* data_y,
                      const int32_t* index) = 0;
  // An SGD step of each client with rows[c] > 0 (ml/sgd.cc's arithmetic):
  // params -= lr * (grad + ...); anchor read with prox_mu > 0, velocity
  // with momentum > 0 (both [C x P]).
  virtual void SgdStep(const SgdScalars& sgd, float* params, const float* grad, const float* anchor,
                       float* velocity) = 0;
  // SAM's ascent point: out = params + (rho / (||grad_c||_2 + 1e-12)) grad,
  // per client with rows[c] > 0; the norm in double, in a fixed order.
  virtual void SamPoint(double rho, const float* params, const float* grad, float* out) = 0;
  // sums[c] += loss[c] (as double) for clients with rows[c] > 0.
  virtual void AddLoss(const float* loss, double* sums) = 0;
  // out[i] = a[i] - b[i] for n floats (a task's delta, local - base).
  virtual void Subtract(const float* a, const float* b, float* out, size_t n) = 0;
};

}  // namespace fedsim::gpu

#endif  // FEDSIM_ML_GPU_GPU_NET_H_
