// FEDSIM_HD marks a function for both the host and the GPU: __host__
// __device__ under nvcc, nothing under the host compiler. The GPU backend's
// arithmetic is written once in such functions (ml/gpu/gpu_math.h) and run
// by both executors (ml/gpu/exec_host.h on the CPU, ml/gpu/cuda/ on the
// GPU), so that the CPU tests of every machine cover the GPU's math.
#ifndef FEDSIM_ML_GPU_HD_H_
#define FEDSIM_ML_GPU_HD_H_

#if defined(__CUDACC__)
#define FEDSIM_HD __host__ __device__
#else
#define FEDSIM_HD
#endif

#endif  // FEDSIM_ML_GPU_HD_H_
