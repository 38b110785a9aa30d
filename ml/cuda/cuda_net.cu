// The CUDA executor for NetImpl (ml/gpu/net_impl.h): device memory on one
// stream per net, a grid-stride kernel per ForEach, and a tiled batched GEMM
// that keeps GemmDot's accumulation order (so the GPU computes the CPU
// emulation's bits).
#include <cuda_runtime.h>

#include <cstdio>
#include <string>
#include <utility>

#include "ml/cuda/cuda_net.h"
#include "ml/cuda/gemm_kernel.cuh"
#include "ml/gpu/gpu_math.h"
#include "ml/gpu/net_impl.h"

namespace fedsim::gpu {
namespace {

template <class F>
__global__ void ForEachKernel(F f, int64_t n) {
  const int64_t stride = static_cast<int64_t>(gridDim.x) * blockDim.x;
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < n;
       i += stride) {
    f(i);
  }
}

// 64 x 64 outputs per block of 16 x 16 threads (4 x 4 each), K in steps of
// 16 through shared memory. Each output accumulates fmaf(a, b, acc) for k
// ascending from 0: GemmDot's order exactly.
constexpr int kTile = 64;
constexpr int kDepth = 16;

__global__ void GemmKernel(GemmArgs g) {
  __shared__ float as[kDepth][kTile + 1];
  __shared__ float bs[kDepth][kTile + 1];
  const int c = blockIdx.z;
  const int i0 = blockIdx.y * kTile, j0 = blockIdx.x * kTile;
  const int tx = threadIdx.x, ty = threadIdx.y;
  const int tid = ty * 16 + tx;
  const int depth = GemmDepth(g, c);
  const float* a = g.a + c * g.a_batch;
  const float* b = g.b + c * g.b_batch;
  float acc[4][4];
  for (int u = 0; u < 4; ++u) {
    for (int v = 0; v < 4; ++v) acc[u][v] = 0.0f;
  }
  for (int k0 = 0; k0 < depth; k0 += kDepth) {
    // 1024 elements of each tile, 4 per thread. For A, consecutive threads
    // walk k when A is row-major (a_col == 1), else i.
    for (int e = tid; e < kTile * kDepth; e += 256) {
      int kk, ii;
      if (g.a_col == 1) {
        kk = e % kDepth;
        ii = e / kDepth;
      } else {
        ii = e % kTile;
        kk = e / kTile;
      }
      const int i = i0 + ii, k = k0 + kk;
      as[kk][ii] = (i < g.m && k < depth) ? a[i * g.a_row + k * g.a_col] : 0.0f;
      int jj;
      if (g.b_col == 1) {
        jj = e % kTile;
        kk = e / kTile;
      } else {
        kk = e % kDepth;
        jj = e / kDepth;
      }
      const int j = j0 + jj, k2 = k0 + kk;
      bs[kk][jj] = (j < g.n && k2 < depth) ? b[k2 * g.b_row + j * g.b_col] : 0.0f;
    }
    __syncthreads();
    const int kmax = depth - k0 < kDepth ? depth - k0 : kDepth;
    for (int kk = 0; kk < kmax; ++kk) {
      float av[4], bv[4];
      for (int u = 0; u < 4; ++u) av[u] = as[kk][ty + 16 * u];
      for (int v = 0; v < 4; ++v) bv[v] = bs[kk][tx + 16 * v];
      for (int u = 0; u < 4; ++u) {
        for (int v = 0; v < 4; ++v) acc[u][v] = fmaf(av[u], bv[v], acc[u][v]);
      }
    }
    __syncthreads();
  }
  for (int u = 0; u < 4; ++u) {
    const int i = i0 + ty + 16 * u;
    if (i >= g.m) continue;
    float* row = g.out + c * g.c_batch + i * g.c_row;
    for (int v = 0; v < 4; ++v) {
      const int j = j0 + tx + 16 * v;
      if (j < g.n) row[j] = acc[u][v];
    }
  }
}

}  // namespace

void LaunchBatchedGemm(const GemmArgs& g, cudaStream_t stream) {
  if (g.m <= 0 || g.n <= 0 || g.batch <= 0) return;
  const dim3 grid((g.n + kTile - 1) / kTile, (g.m + kTile - 1) / kTile, g.batch);
  GemmKernel<<<grid, dim3(16, 16), 0, stream>>>(g);
}

namespace {

class CudaExec {
 public:
  CudaExec(int device, cudaStream_t stream, std::string name)
      : device_(device), stream_(stream), name_(std::move(name)) {}
  CudaExec(CudaExec&& o) noexcept
      : device_(o.device_),
        stream_(std::exchange(o.stream_, nullptr)),
        name_(std::move(o.name_)),
        error_(std::move(o.error_)) {}
  ~CudaExec() {
    if (stream_ != nullptr) {
      cudaSetDevice(device_);
      cudaStreamDestroy(stream_);
    }
  }

  void* Malloc(size_t bytes) {
    cudaSetDevice(device_);
    void* p = nullptr;
    if (cudaMalloc(&p, bytes > 0 ? bytes : 1) != cudaSuccess) {
      cudaGetLastError();  // an allocation failure is not sticky
      return nullptr;
    }
    Check(cudaMemsetAsync(p, 0, bytes, stream_), "cudaMemsetAsync");
    return p;
  }
  void Free(void* p) {
    cudaSetDevice(device_);
    cudaStreamSynchronize(stream_);
    cudaFree(p);
  }
  void* HostMalloc(size_t bytes) {
    cudaSetDevice(device_);
    void* p = nullptr;
    if (cudaMallocHost(&p, bytes > 0 ? bytes : 1) != cudaSuccess) {
      cudaGetLastError();
      return nullptr;
    }
    return p;
  }
  void HostFree(void* p) {
    cudaSetDevice(device_);
    cudaStreamSynchronize(stream_);
    cudaFreeHost(p);
  }
  void Upload(void* dst, const void* src, size_t bytes) {
    if (bytes == 0 || !error_.empty()) return;
    cudaSetDevice(device_);
    Check(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyHostToDevice, stream_), "upload");
    // The caller may reuse src at once: wait until the copy has read it.
    Check(cudaStreamSynchronize(stream_), "upload");
  }
  void Download(void* dst, const void* src, size_t bytes) {
    if (bytes == 0 || !error_.empty()) return;
    cudaSetDevice(device_);
    Check(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToHost, stream_), "download");
    Check(cudaStreamSynchronize(stream_), "download");
  }
  void Copy(void* dst, const void* src, size_t bytes) {
    if (bytes == 0 || !error_.empty()) return;
    cudaSetDevice(device_);
    Check(cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToDevice, stream_), "copy");
  }
  void Sync() {
    if (!error_.empty()) return;
    cudaSetDevice(device_);
    Check(cudaStreamSynchronize(stream_), "synchronize");
  }

  template <class F>
  void ForEach(int64_t n, const F& f) {
    if (n <= 0 || !error_.empty()) return;
    constexpr int kThreads = 256;
    const int64_t want = (n + kThreads - 1) / kThreads;
    const int blocks = static_cast<int>(want < 65536 ? want : 65536);
    cudaSetDevice(device_);  // the calling thread may not have chosen it
    ForEachKernel<<<blocks, kThreads, 0, stream_>>>(f, n);
    Check(cudaGetLastError(), "kernel launch");
  }

  void Gemm(const GemmArgs& g) {
    if (g.m <= 0 || g.n <= 0 || g.batch <= 0 || !error_.empty()) return;
    cudaSetDevice(device_);
    LaunchBatchedGemm(g, stream_);
    Check(cudaGetLastError(), "gemm launch");
  }

  std::string name() const { return name_; }
  std::string status() const { return error_; }

 private:
  void Check(cudaError_t e, const char* what) {
    if (e != cudaSuccess && error_.empty()) {
      error_ = name_ + ": " + what + ": " + cudaGetErrorString(e);
    }
  }

  int device_;
  cudaStream_t stream_;
  std::string name_;
  std::string error_;
};

}  // namespace

std::string CudaDeviceName(int device) {
  cudaDeviceProp prop{};
  if (cudaGetDeviceProperties(&prop, device) != cudaSuccess) {
    cudaGetLastError();
    return "cuda:" + std::to_string(device) + " (unavailable)";
  }
  return "cuda:" + std::to_string(device) + " (" + prop.name + ", sm_" +
         std::to_string(prop.major) + std::to_string(prop.minor) + ")";
}

bool CudaMemoryInfo(int device, size_t* free_bytes, size_t* total_bytes) {
  if (cudaSetDevice(device) != cudaSuccess) {
    cudaGetLastError();
    return false;
  }
  if (cudaMemGetInfo(free_bytes, total_bytes) != cudaSuccess) {
    cudaGetLastError();
    return false;
  }
  return true;
}

std::unique_ptr<GpuNet> NewCudaNet(const NetSpec& spec, int device, int clients, int max_rows,
                                   std::string* error) {
  int count = 0;
  if (cudaGetDeviceCount(&count) != cudaSuccess || device < 0 || device >= count) {
    cudaGetLastError();
    *error =
        "no CUDA device " + std::to_string(device) + " (" + std::to_string(count) + " visible)";
    return nullptr;
  }
  cudaSetDevice(device);
  cudaStream_t stream = nullptr;
  if (cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking) != cudaSuccess) {
    *error = std::string("cudaStreamCreate: ") + cudaGetErrorString(cudaGetLastError());
    return nullptr;
  }
  std::string name = CudaDeviceName(device);
  auto net =
      std::make_unique<NetImpl<CudaExec>>(CudaExec(device, stream, name), spec, clients, max_rows);
  net->Sync();
  if (!net->status().empty()) {
    *error = net->status();
    return nullptr;
  }
  return net;
}

}  // namespace fedsim::gpu
