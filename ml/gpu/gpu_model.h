// A Model (ml/model.h) whose arithmetic runs on the GPU backend: a
// one-client GpuNet behind the Model interface. Each call copies the
// parameters (only when they changed since the last call) and the batch in,
// and the results out, so every optimizer, objective and attack of ml/
// works unchanged on the GPU: adversarial attacks take their input
// gradients there too. Plain SGD and SAM tasks have a faster path that
// keeps everything on the device (ml/gpu/batched_trainer.h).
//
// A failure of the device mid-call (it cannot be returned through the Model
// interface) ends the process with the device's message: a worker that dies
// has its tasks retried elsewhere.
//
// Thread safety: one thread at a time per model, as every Model.
#ifndef FEDSIM_ML_GPU_GPU_MODEL_H_
#define FEDSIM_ML_GPU_GPU_MODEL_H_

#include <memory>

#include "absl/status/statusor.h"
#include "ml/gpu/device.h"
#include "ml/model.h"

namespace fedsim {

// REQUIRES: device.is_gpu_backend(). Errors as NewGpuNet.
absl::StatusOr<std::unique_ptr<Model>> NewGpuBackedModel(const ModelConfig& config,
                                                         const DeviceSpec& device);

}  // namespace fedsim

#endif  // FEDSIM_ML_GPU_GPU_MODEL_H_
