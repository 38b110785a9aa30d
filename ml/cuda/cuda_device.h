// The CUDA backend's entry points. Built only when the CUDA toolkit is found
// (then FEDSIM_HAVE_CUDA=1 is defined for every target linking fedsim_cuda).
// The CUDA models come in a later issue; for now this says whether a device
// is usable.
//
// Thread safety: every function here is thread-safe.
#ifndef FEDSIM_ML_CUDA_CUDA_DEVICE_H_
#define FEDSIM_ML_CUDA_CUDA_DEVICE_H_

namespace fedsim {

// True iff the CUDA runtime reports at least one device. False (never an
// error) on machines without a GPU or driver.
bool CudaDeviceAvailable();

// Number of CUDA devices; 0 without a GPU or driver.
int CudaDeviceCount();

// Adds a[i] + b[i] into out[i] on device 0 (a smoke test of the toolchain).
// Returns false if no device is usable or any CUDA call fails.
// REQUIRES: a, b, out point at n floats in host memory.
bool CudaAddVectors(const float* a, const float* b, float* out, int n);

}  // namespace fedsim

#endif  // FEDSIM_ML_CUDA_CUDA_DEVICE_H_
