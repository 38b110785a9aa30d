// The CUDA backend's entry points. Built only when the CUDA toolkit is found
// (then FEDSIM_HAVE_CUDA=1 is defined for every target linking fedsim_cuda).
// The CUDA models come in a later issue; for now this says whether a device
// is usable and runs two small kernels that the tests check against the CPU.
//
// Thread safety: every function here is thread-safe.
#ifndef FEDSIM_ML_CUDA_CUDA_DEVICE_H_
#define FEDSIM_ML_CUDA_CUDA_DEVICE_H_

#include <string>

namespace fedsim {

// True iff the CUDA runtime reports at least one device. False (never an
// error) on machines without a GPU or driver.
bool CudaDeviceAvailable();

// Number of CUDA devices; 0 without a GPU or driver.
int CudaDeviceCount();

// What the runtime says about the devices, for logs and test skips:
// "2 device(s), device 0: NVIDIA H200 (sm_90)" or the runtime's error, e.g.
// "no CUDA device: cudaGetDeviceCount: no CUDA-capable device is detected".
std::string CudaDeviceSummary();

// Adds a[i] + b[i] into out[i] on device 0 (a smoke test of the toolchain).
// Returns false if no device is usable or any CUDA call fails.
// REQUIRES: a, b, out point at n floats in host memory.
bool CudaAddVectors(const float* a, const float* b, float* out, int n);

// c = a * b on device 0, row-major: a is m x k, b is k x n, c is m x n (a
// tiled kernel, float accumulation in k order). Returns false if no device is
// usable or any CUDA call fails (then c is unspecified).
// REQUIRES: m, n, k >= 0; a, b, c point at host memory of those sizes.
bool CudaMatMul(const float* a, const float* b, float* c, int m, int k, int n);

}  // namespace fedsim

#endif  // FEDSIM_ML_CUDA_CUDA_DEVICE_H_
