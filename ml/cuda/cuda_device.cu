#include <cuda_runtime.h>

#include <string>

#include "ml/cuda/cuda_device.h"

namespace fedsim {
namespace {

constexpr int kTile = 16;

__global__ void AddKernel(const float* a, const float* b, float* out, int n) {
  const int i = blockIdx.x * blockDim.x + threadIdx.x;
  if (i < n) out[i] = a[i] + b[i];
}

// One kTile x kTile block of c per thread block, through shared-memory tiles
// of a and b; rows and columns past m, n, k read as zero.
__global__ void MatMulKernel(const float* a, const float* b, float* c, int m, int k, int n) {
  __shared__ float as[kTile][kTile];
  __shared__ float bs[kTile][kTile];
  const int row = blockIdx.y * kTile + threadIdx.y;
  const int col = blockIdx.x * kTile + threadIdx.x;
  float acc = 0.0f;
  for (int t = 0; t < k; t += kTile) {
    const int ak = t + threadIdx.x;
    const int bk = t + threadIdx.y;
    as[threadIdx.y][threadIdx.x] = row < m && ak < k ? a[static_cast<size_t>(row) * k + ak] : 0.0f;
    bs[threadIdx.y][threadIdx.x] = bk < k && col < n ? b[static_cast<size_t>(bk) * n + col] : 0.0f;
    __syncthreads();
    for (int j = 0; j < kTile; ++j) acc = fmaf(as[threadIdx.y][j], bs[j][threadIdx.x], acc);
    __syncthreads();
  }
  if (row < m && col < n) c[static_cast<size_t>(row) * n + col] = acc;
}

// Device buffers freed on every return path.
class DeviceBuffer {
 public:
  explicit DeviceBuffer(size_t floats) {
    if (floats > 0 && cudaMalloc(&p_, floats * sizeof(float)) != cudaSuccess) p_ = nullptr;
  }
  ~DeviceBuffer() {
    if (p_ != nullptr) cudaFree(p_);
  }
  DeviceBuffer(const DeviceBuffer&) = delete;
  DeviceBuffer& operator=(const DeviceBuffer&) = delete;
  float* get() const { return p_; }

 private:
  float* p_ = nullptr;
};

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

std::string CudaDeviceSummary() {
  int count = 0;
  const cudaError_t err = cudaGetDeviceCount(&count);
  if (err != cudaSuccess) {
    cudaGetLastError();
    return std::string("no CUDA device: cudaGetDeviceCount: ") + cudaGetErrorString(err);
  }
  if (count == 0) return "no CUDA device: cudaGetDeviceCount reports 0";
  cudaDeviceProp prop;
  if (cudaGetDeviceProperties(&prop, 0) != cudaSuccess) {
    cudaGetLastError();
    return std::to_string(count) + " device(s), device 0 unreadable";
  }
  return std::to_string(count) + " device(s), device 0: " + prop.name + " (sm_" +
         std::to_string(prop.major) + std::to_string(prop.minor) + ")";
}

bool CudaAddVectors(const float* a, const float* b, float* out, int n) {
  if (!CudaDeviceAvailable() || n < 0) return false;
  if (n == 0) return true;
  const size_t bytes = sizeof(float) * static_cast<size_t>(n);
  DeviceBuffer d(3 * static_cast<size_t>(n));
  if (d.get() == nullptr) return false;
  bool ok = cudaMemcpy(d.get(), a, bytes, cudaMemcpyHostToDevice) == cudaSuccess &&
            cudaMemcpy(d.get() + n, b, bytes, cudaMemcpyHostToDevice) == cudaSuccess;
  if (ok) {
    AddKernel<<<(n + 255) / 256, 256>>>(d.get(), d.get() + n, d.get() + 2 * static_cast<size_t>(n),
                                        n);
    ok = cudaGetLastError() == cudaSuccess &&
         cudaMemcpy(out, d.get() + 2 * static_cast<size_t>(n), bytes, cudaMemcpyDeviceToHost) ==
             cudaSuccess;
  }
  return ok;
}

bool CudaMatMul(const float* a, const float* b, float* c, int m, int k, int n) {
  if (!CudaDeviceAvailable() || m < 0 || k < 0 || n < 0) return false;
  if (m == 0 || n == 0) return true;
  const size_t na = static_cast<size_t>(m) * k, nb = static_cast<size_t>(k) * n;
  const size_t nc = static_cast<size_t>(m) * n;
  DeviceBuffer da(na), db(nb), dc(nc);
  if ((na > 0 && da.get() == nullptr) || (nb > 0 && db.get() == nullptr) || dc.get() == nullptr) {
    return false;
  }
  if ((na > 0 &&
       cudaMemcpy(da.get(), a, na * sizeof(float), cudaMemcpyHostToDevice) != cudaSuccess) ||
      (nb > 0 &&
       cudaMemcpy(db.get(), b, nb * sizeof(float), cudaMemcpyHostToDevice) != cudaSuccess)) {
    return false;
  }
  const dim3 block(kTile, kTile);
  const dim3 grid((n + kTile - 1) / kTile, (m + kTile - 1) / kTile);
  MatMulKernel<<<grid, block>>>(da.get(), db.get(), dc.get(), m, k, n);
  return cudaGetLastError() == cudaSuccess &&
         cudaMemcpy(c, dc.get(), nc * sizeof(float), cudaMemcpyDeviceToHost) == cudaSuccess;
}

}  // namespace fedsim
