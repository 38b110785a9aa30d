#include "ml/cuda/cuda_device.h"

#include <cuda_runtime.h>

namespace fedsim {
namespace {

__global__ void AddKernel(const float* a, const float* b, float* out, int n) {
  const int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i < n) out[i] = a[i] + b[i];
}

}  // namespace

int CudaDeviceCount() {
  int count = 0;
  if (cudaGetDeviceCount(&count) != cudaSuccess) {
    cudaGetLastError();  // clear the sticky error left by a missing driver
    return 0;
  }
  return count;
}

bool CudaDeviceAvailable() { return CudaDeviceCount() > 0; }

bool CudaAddVectors(const float* a, const float* b, float* out, int n) {
  if (!CudaDeviceAvailable() || n < 0) return false;
  if (n == 0) return true;
  const size_t bytes = sizeof(float) * static_cast<size_t>(n);
  float* d = nullptr;
  if (cudaMalloc(&d, 3 * bytes) != cudaSuccess) return false;
  bool ok = cudaMemcpy(d, a, bytes, cudaMemcpyHostToDevice) == cudaSuccess &&
            cudaMemcpy(d + n, b, bytes, cudaMemcpyHostToDevice) == cudaSuccess;
  if (ok) {
    AddKernel<<<(n + 255) / 256, 256>>>(d, d + n, d + 2 * static_cast<size_t>(n), n);
    ok = cudaGetLastError() == cudaSuccess &&
         cudaMemcpy(out, d + 2 * static_cast<size_t>(n), bytes, cudaMemcpyDeviceToHost) ==
             cudaSuccess;
  }
  cudaFree(d);
  return ok;
}

}  // namespace fedsim
