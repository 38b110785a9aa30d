// Where a model trains: the CPU (Eigen, ml/model.h), a CUDA GPU, or the CPU
// emulation of the GPU backend (for tests and for checking a GPU run), and
// the factories that build models and batched nets there.
//
// Results: the same seed gives bit-identical models on one backend (on the
// GPU: the same GPU model and build). Across backends they agree within
// float tolerance, not bit for bit (the GEMMs sum in other orders); the
// manifest names the backend that produced a run. The GPU backend computes
// exactly the bits of its CPU emulation.
//
// Thread safety: the functions are thread-safe; what they return serves one
// thread at a time.
#ifndef FEDSIM_ML_GPU_DEVICE_H_
#define FEDSIM_ML_GPU_DEVICE_H_

#include <memory>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "ml/gpu/gpu_net.h"
#include "ml/model.h"

namespace fedsim {

struct DeviceSpec {
  enum class Kind { kCpu, kCuda, kEmulated };
  // Default: kCpu.
  Kind kind = Kind::kCpu;
  // The CUDA device's index (kCuda only).
  int index = 0;

  bool is_gpu_backend() const { return kind != Kind::kCpu; }
  // "cpu", "cuda:0", "emulated": what ParseDeviceSpec reads back.
  std::string ToString() const;
  // What the manifest and logs call it: "cpu", "host emulation" or the GPU's
  // name, "cuda:0 (NVIDIA H200, sm_90)".
  std::string DisplayName() const;
};

// "cpu", "cuda" (= "cuda:0"), "cuda:N" or "emulated". InvalidArgument naming
// the accepted forms otherwise. Does not check that the device exists.
absl::StatusOr<DeviceSpec> ParseDeviceSpec(std::string_view text);

// True when this binary was built with the CUDA backend.
bool CudaBackendBuilt();
// CUDA devices this process can use: 0 without the backend, a driver or a GPU.
int CudaDevicesVisible();
// "cuda:0 NVIDIA H200 (sm_90, 139 GiB)" or why there is none.
std::string CudaDevicesSummary();

// OK when `device` can run here: kCuda needs the backend built and device
// `index` present (FailedPrecondition saying which is missing and what to
// do otherwise).
absl::Status CheckDevice(const DeviceSpec& device);

// Free memory of `device` in bytes: the GPU's, as the driver reports it;
// for the emulation a nominal 4 GiB; 0 for the CPU or when it cannot be read.
size_t DeviceFreeMemory(const DeviceSpec& device);

// The GPU backend's description of `config` (its layers, offsets and
// parameter count, equal to NewModel(config)'s).
gpu::NetSpec NetSpecFor(const ModelConfig& config);

// `clients` models of `config` side by side on `device` (kCuda or
// kEmulated), for batches of up to `max_rows` rows each. FailedPrecondition
// from CheckDevice, ResourceExhausted when the device memory is too small.
absl::StatusOr<std::unique_ptr<gpu::GpuNet>> NewGpuNet(const ModelConfig& config,
                                                       const DeviceSpec& device, int clients,
                                                       int max_rows);

// A Model (ml/model.h) on `device`: NewModel(config) on the CPU; on a GPU
// backend a one-client GpuNet behind the Model interface (parameters and
// batches are copied in and results out on each call, so every optimizer,
// objective and attack of ml/ runs unchanged; the batched trainer,
// ml/gpu/batched_trainer.h, is the fast path for plain SGD and SAM).
absl::StatusOr<std::unique_ptr<Model>> NewModelOn(const ModelConfig& config,
                                                  const DeviceSpec& device);

}  // namespace fedsim

#endif  // FEDSIM_ML_GPU_DEVICE_H_
