// The CUDA executor's batched GEMM (ml/cuda/cuda_net.cu), for the code that
// compares it with cuBLAS (gemm_compare.cu). Internal to ml/cuda.
#ifndef FEDSIM_ML_CUDA_GEMM_KERNEL_CUH_
#define FEDSIM_ML_CUDA_GEMM_KERNEL_CUH_

#include <cuda_runtime.h>

#include "ml/gpu/gpu_math.h"

namespace fedsim::gpu {

// out(c, i, j) = GemmDot(g, c, i, j) for every entry, on `stream`.
void LaunchBatchedGemm(const GemmArgs& g, cudaStream_t stream);

}  // namespace fedsim::gpu

#endif  // FEDSIM_ML_CUDA_GEMM_KERNEL_CUH_
