// The CPU emulation of the GPU backend (ml/gpu/exec_host.h): a GpuNet whose
// "device" memory is host memory, running the GPU kernels' arithmetic in
// loops. For tests and for checking a GPU run bit for bit.
#ifndef FEDSIM_ML_GPU_HOST_NET_H_
#define FEDSIM_ML_GPU_HOST_NET_H_

#include <memory>

#include "ml/gpu/gpu_net.h"

namespace fedsim::gpu {

// Null when the host is out of memory.
std::unique_ptr<GpuNet> NewHostNet(const NetSpec& spec, int clients, int max_rows);

}  // namespace fedsim::gpu

#endif  // FEDSIM_ML_GPU_HOST_NET_H_
