// Our batched GEMM against cuBLAS's strided-batched SGEMM on one shape
// (ml/cuda/cuda_net.h, CompareGemmWithCublas): why the backend keeps its own
// kernel is a trade (per-client depths and batch-invariant bits) whose
// price this measures.
//
// cuBLAS is loaded with dlopen when the comparison runs, not linked: the
// backend itself does not use it, and its libraries (~0.5 GB with cublasLt)
// should not become a dependency of every binary for one measurement.
#include <cublas_v2.h>
#include <cuda_runtime.h>
#include <dlfcn.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <random>
#include <vector>

#include "ml/cuda/cuda_net.h"
#include "ml/cuda/gemm_kernel.cuh"

namespace fedsim::gpu {

bool CompareGemmWithCublas(int device, int batch, int m, int n, int k, int reps,
                           GemmComparison* out, std::string* error) {
  auto fail = [&](const std::string& what) {
    *error = what;
    return false;
  };
  if (cudaSetDevice(device) != cudaSuccess) return fail("cudaSetDevice failed");
  const size_t a_size = static_cast<size_t>(batch) * m * k;
  const size_t b_size = static_cast<size_t>(batch) * k * n;
  const size_t c_size = static_cast<size_t>(batch) * m * n;
  std::vector<float> host(a_size + b_size);
  std::mt19937 gen(1);
  std::uniform_real_distribution<float> dist(-1.0f, 1.0f);
  for (float& v : host) v = dist(gen);
  float *a = nullptr, *b = nullptr, *c1 = nullptr, *c2 = nullptr;
  if (cudaMalloc(&a, a_size * 4) != cudaSuccess || cudaMalloc(&b, b_size * 4) != cudaSuccess ||
      cudaMalloc(&c1, c_size * 4) != cudaSuccess || cudaMalloc(&c2, c_size * 4) != cudaSuccess) {
    return fail("cudaMalloc failed");
  }
  cudaMemcpy(a, host.data(), a_size * 4, cudaMemcpyHostToDevice);
  cudaMemcpy(b, host.data() + a_size, b_size * 4, cudaMemcpyHostToDevice);
  void* lib = nullptr;
  for (const char* name :
       {"libcublas.so.13", "/usr/local/cuda/lib64/libcublas.so.13", "libcublas.so"}) {
    if ((lib = dlopen(name, RTLD_NOW | RTLD_LOCAL)) != nullptr) break;
  }
  if (lib == nullptr) return fail("cuBLAS not found (libcublas.so.13 on the library path)");
  using CreateFn = decltype(&cublasCreate_v2);
  using DestroyFn = decltype(&cublasDestroy_v2);
  using GemmFn = decltype(&cublasSgemmStridedBatched);
  auto create = reinterpret_cast<CreateFn>(dlsym(lib, "cublasCreate_v2"));
  auto destroy = reinterpret_cast<DestroyFn>(dlsym(lib, "cublasDestroy_v2"));
  auto sgemm = reinterpret_cast<GemmFn>(dlsym(lib, "cublasSgemmStridedBatched"));
  if (create == nullptr || destroy == nullptr || sgemm == nullptr) {
    return fail("cuBLAS lacks cublasCreate_v2 / cublasSgemmStridedBatched");
  }
  cublasHandle_t handle = nullptr;
  if (create(&handle) != CUBLAS_STATUS_SUCCESS) return fail("cublasCreate failed");
  // Row-major A (m x k), B (k x n), C (m x n): cuBLAS (column-major)
  // computes C^T = B^T A^T, which is C in row-major order.
  GemmArgs g;
  g.a = a;
  g.b = b;
  g.out = c1;
  g.a_batch = static_cast<int64_t>(m) * k;
  g.a_row = k;
  g.a_col = 1;
  g.b_batch = static_cast<int64_t>(k) * n;
  g.b_row = n;
  g.b_col = 1;
  g.c_batch = static_cast<int64_t>(m) * n;
  g.c_row = n;
  g.batch = batch;
  g.m = m;
  g.n = n;
  g.k = k;
  const float alpha = 1.0f, beta = 0.0f;
  auto ours = [&] { LaunchBatchedGemm(g, nullptr); };
  auto theirs = [&] {
    sgemm(handle, CUBLAS_OP_N, CUBLAS_OP_N, n, m, k, &alpha, b, n, static_cast<long long>(k) * n, a,
          k, static_cast<long long>(m) * k, &beta, c2, n, static_cast<long long>(m) * n, batch);
  };
  auto best_ms = [&](auto&& f) {
    f();
    cudaDeviceSynchronize();
    double best = 1e30;
    for (int r = 0; r < reps; ++r) {
      const auto t0 = std::chrono::steady_clock::now();
      for (int i = 0; i < 10; ++i) f();
      cudaDeviceSynchronize();
      const double ms =
          std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count() /
          10;
      best = std::min(best, ms);
    }
    return best;
  };
  out->ours_ms = best_ms(ours);
  out->cublas_ms = best_ms(theirs);
  std::vector<float> r1(c_size), r2(c_size);
  cudaMemcpy(r1.data(), c1, c_size * 4, cudaMemcpyDeviceToHost);
  cudaMemcpy(r2.data(), c2, c_size * 4, cudaMemcpyDeviceToHost);
  double diff = 0, scale = 0;
  for (size_t i = 0; i < c_size; ++i) {
    diff = std::max(diff, static_cast<double>(std::fabs(r1[i] - r2[i])));
    scale = std::max(scale, static_cast<double>(std::fabs(r2[i])));
  }
  out->max_rel_diff = scale > 0 ? diff / scale : diff;
  out->gflops_ours = 2.0 * batch * m * n * k / (out->ours_ms * 1e6);
  out->gflops_cublas = 2.0 * batch * m * n * k / (out->cublas_ms * 1e6);
  destroy(handle);
  cudaFree(a);
  cudaFree(b);
  cudaFree(c1);
  cudaFree(c2);
  const cudaError_t e = cudaGetLastError();
  if (e != cudaSuccess) return fail(cudaGetErrorString(e));
  return true;
}

}  // namespace fedsim::gpu
