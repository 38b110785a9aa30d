// The CUDA executor's entry point: a GpuNet (ml/gpu/gpu_net.h) on a CUDA
// device. Plain C++ (no Abseil), so that nvcc compiles only this backend's
// own code. Built only with the CUDA backend (FEDSIM_HAVE_CUDA).
#ifndef FEDSIM_ML_CUDA_CUDA_NET_H_
#define FEDSIM_ML_CUDA_CUDA_NET_H_

#include <memory>
#include <string>

#include "ml/gpu/gpu_net.h"

namespace fedsim::gpu {

// `clients` nets of `spec` on CUDA device `device`, for up to `max_rows`
// rows per client. Null with *error set when the device cannot be used or
// its memory is too small. The net's kernels are deterministic: a GEMM
// accumulates each output in k order with fused multiply-adds (GemmDot's
// order), so the results equal the CPU emulation's bit for bit.
std::unique_ptr<GpuNet> NewCudaNet(const NetSpec& spec, int device, int clients, int max_rows,
                                   std::string* error);

// "cuda:0 (NVIDIA H200, sm_90)", or "cuda:N (unavailable)".
std::string CudaDeviceName(int device);

// Our batched GEMM and cuBLAS's cublasSgemmStridedBatched timed on the same
// `batch` products of row-major (m x k) by (k x n), best of `reps` rounds of
// 10 launches each; false with *error set when CUDA or cuBLAS fails.
struct GemmComparison {
  double ours_ms = 0, cublas_ms = 0;
  double gflops_ours = 0, gflops_cublas = 0;
  double max_rel_diff = 0;  // normwise, ours against cuBLAS
};
bool CompareGemmWithCublas(int device, int batch, int m, int n, int k, int reps,
                           GemmComparison* out, std::string* error);

// Free and total memory of `device` in bytes; false when it cannot be read.
bool CudaMemoryInfo(int device, size_t* free_bytes, size_t* total_bytes);

}  // namespace fedsim::gpu

#endif  // FEDSIM_ML_CUDA_CUDA_NET_H_
