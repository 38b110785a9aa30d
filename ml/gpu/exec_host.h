// The CPU emulation's executor for NetImpl (ml/gpu/net_impl.h): host memory,
// loops in index order, and the batched GEMM as GemmDot per output. Slow
// (no blocking, one thread), but it runs exactly the arithmetic of the GPU
// kernels, so tests on machines without a GPU check the backend's logic and
// a GPU run can be compared with it bit for bit.
#ifndef FEDSIM_ML_GPU_EXEC_HOST_H_
#define FEDSIM_ML_GPU_EXEC_HOST_H_

#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <string>

#include "ml/gpu/gpu_math.h"

namespace fedsim::gpu {

class HostExec {
 public:
  void* Malloc(size_t bytes) { return std::calloc(bytes > 0 ? bytes : 1, 1); }
  void Free(void* p) { std::free(p); }
  void* HostMalloc(size_t bytes) { return std::malloc(bytes > 0 ? bytes : 1); }
  void HostFree(void* p) { std::free(p); }
  void Upload(void* dst, const void* src, size_t bytes) { Copy(dst, src, bytes); }
  void Download(void* dst, const void* src, size_t bytes) { Copy(dst, src, bytes); }
  void Copy(void* dst, const void* src, size_t bytes) {
    if (bytes > 0) std::memmove(dst, src, bytes);
  }
  void Sync() {}

  template <class F>
  void ForEach(int64_t n, const F& f) {
    for (int64_t i = 0; i < n; ++i) f(i);
  }

  void Gemm(const GemmArgs& g) {
    for (int c = 0; c < g.batch; ++c) {
      for (int i = 0; i < g.m; ++i) {
        float* row = g.out + c * g.c_batch + i * g.c_row;
        for (int j = 0; j < g.n; ++j) row[j] = GemmDot(g, c, i, j);
      }
    }
  }

  std::string name() const { return "host emulation"; }
  std::string status() const { return ""; }
};

}  // namespace fedsim::gpu

#endif  // FEDSIM_ML_GPU_EXEC_HOST_H_
