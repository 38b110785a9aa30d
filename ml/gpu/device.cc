#include "ml/gpu/device.h"

#include <utility>

#include "absl/status/status.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "ml/gpu/gpu_model.h"
#include "ml/gpu/host_net.h"
#if defined(FEDSIM_HAVE_CUDA)
#include "ml/cuda/cuda_device.h"
#include "ml/cuda/cuda_net.h"
#endif

namespace fedsim {

std::string DeviceSpec::ToString() const {
  switch (kind) {
    case Kind::kCpu:
      return "cpu";
    case Kind::kCuda:
      return absl::StrCat("cuda:", index);
    case Kind::kEmulated:
      return "emulated";
  }
  return "unknown";
}

std::string DeviceSpec::DisplayName() const {
  switch (kind) {
    case Kind::kCpu:
      return "cpu";
    case Kind::kEmulated:
      return "host emulation";
    case Kind::kCuda:
#if defined(FEDSIM_HAVE_CUDA)
      return gpu::CudaDeviceName(index);
#else
      return ToString();
#endif
  }
  return "unknown";
}

absl::StatusOr<DeviceSpec> ParseDeviceSpec(std::string_view text) {
  DeviceSpec d;
  if (text == "cpu") return d;
  if (text == "emulated") {
    d.kind = DeviceSpec::Kind::kEmulated;
    return d;
  }
  if (text == "cuda") {
    d.kind = DeviceSpec::Kind::kCuda;
    return d;
  }
  int index = 0;
  if (text.substr(0, 5) == "cuda:" && absl::SimpleAtoi(std::string(text.substr(5)), &index) &&
      index >= 0) {
    d.kind = DeviceSpec::Kind::kCuda;
    d.index = index;
    return d;
  }
  return absl::InvalidArgumentError(
      absl::StrCat("device \"", std::string(text),
                   "\": expected cpu, cuda (the first GPU), cuda:N (GPU number N, from 0) or "
                   "emulated (the GPU backend's arithmetic on the CPU, for checks)"));
}

bool CudaBackendBuilt() {
#if defined(FEDSIM_HAVE_CUDA)
  return true;
#else
  return false;
#endif
}

int CudaDevicesVisible() {
#if defined(FEDSIM_HAVE_CUDA)
  return CudaDeviceCount();
#else
  return 0;
#endif
}

std::string CudaDevicesSummary() {
#if defined(FEDSIM_HAVE_CUDA)
  return CudaDeviceSummary();
#else
  return "this build has no CUDA backend (nvcc was not found when it was configured)";
#endif
}

absl::Status CheckDevice(const DeviceSpec& device) {
  if (device.kind != DeviceSpec::Kind::kCuda) return absl::OkStatus();
  if (!CudaBackendBuilt()) {
    return absl::FailedPreconditionError(
        "--device=cuda: this fedsim was built without the CUDA backend; install the CUDA "
        "Toolkit at /usr/local/cuda and rebuild (cmake -DFEDSIM_CUDA=ON), or use --device=cpu");
  }
  const int count = CudaDevicesVisible();
  if (device.index >= count) {
    return absl::FailedPreconditionError(absl::StrCat(
        "--device=", device.ToString(), ": ",
        count == 0 ? "no CUDA device" : absl::StrCat("only ", count, " CUDA device(s)"),
        " visible (", CudaDevicesSummary(), "); use --device=cpu"));
  }
  return absl::OkStatus();
}

size_t DeviceFreeMemory(const DeviceSpec& device) {
  switch (device.kind) {
    case DeviceSpec::Kind::kCpu:
      return 0;
    case DeviceSpec::Kind::kEmulated:
      return size_t{4} << 30;
    case DeviceSpec::Kind::kCuda: {
#if defined(FEDSIM_HAVE_CUDA)
      size_t free_bytes = 0, total = 0;
      if (gpu::CudaMemoryInfo(device.index, &free_bytes, &total)) return free_bytes;
#endif
      return 0;
    }
  }
  return 0;
}

gpu::NetSpec NetSpecFor(const ModelConfig& config) {
  using gpu::NetLayer;
  gpu::NetSpec spec;
  spec.input_dim = config.input_dim();
  spec.num_classes = config.num_classes;
  spec.name = config.ToString();
  size_t offset = 0;
  auto add = [&](NetLayer l) {
    l.offset = offset;
    if (l.kind == NetLayer::Kind::kDense) {
      l.num_params = static_cast<size_t>(l.in_dim()) * l.out_c + l.out_c;
    } else if (l.kind == NetLayer::Kind::kConv) {
      l.num_params = static_cast<size_t>(l.kernel) * l.kernel * l.in_c * l.out_c + l.out_c;
    }
    offset += l.num_params;
    spec.layers.push_back(l);
  };
  auto dense = [&](int in, int out, bool relu) {
    NetLayer l;
    l.kind = NetLayer::Kind::kDense;
    l.in_c = in;
    l.out_c = out;
    l.relu = relu;
    add(l);
  };
  switch (config.kind) {
    case ModelConfig::Kind::kSoftmax:
      dense(config.input_dim(), config.num_classes, false);
      break;
    case ModelConfig::Kind::kMlp: {
      int in = config.input_dim();
      for (int h : config.hidden) {
        dense(in, h, true);
        in = h;
      }
      dense(in, config.num_classes, false);
      break;
    }
    case ModelConfig::Kind::kCnn: {
      int c = config.input_channels, h = config.input_height, w = config.input_width;
      for (int stage = 0; stage < 2; ++stage) {
        NetLayer conv;
        conv.kind = NetLayer::Kind::kConv;
        conv.in_c = c;
        conv.in_h = h;
        conv.in_w = w;
        conv.out_c = stage == 0 ? config.conv1 : config.conv2;
        conv.out_h = h;
        conv.out_w = w;
        conv.kernel = config.kernel;
        conv.relu = true;
        conv.input_chw = stage == 0;
        add(conv);
        NetLayer pool;
        pool.kind = NetLayer::Kind::kPool;
        pool.in_c = conv.out_c;
        pool.in_h = h;
        pool.in_w = w;
        pool.out_c = conv.out_c;
        pool.out_h = h / 2;
        pool.out_w = w / 2;
        add(pool);
        c = conv.out_c;
        h /= 2;
        w /= 2;
      }
      dense(c * h * w, config.fc, true);
      dense(config.fc, config.num_classes, false);
      break;
    }
  }
  spec.num_params = offset;
  return spec;
}

absl::StatusOr<std::unique_ptr<gpu::GpuNet>> NewGpuNet(const ModelConfig& config,
                                                       const DeviceSpec& device, int clients,
                                                       int max_rows) {
  if (clients <= 0 || max_rows <= 0) {
    return absl::InvalidArgumentError(absl::StrCat("NewGpuNet: clients (", clients,
                                                   ") and max_rows (", max_rows, ") must be > 0"));
  }
  // The CPU model's checks (and its parameter count) hold for every backend.
  absl::StatusOr<std::unique_ptr<Model>> cpu = NewModel(config);
  if (!cpu.ok()) return cpu.status();
  const gpu::NetSpec spec = NetSpecFor(config);
  switch (device.kind) {
    case DeviceSpec::Kind::kCpu:
      return absl::InvalidArgumentError("NewGpuNet: the CPU backend has no GpuNet");
    case DeviceSpec::Kind::kEmulated: {
      std::unique_ptr<gpu::GpuNet> net = gpu::NewHostNet(spec, clients, max_rows);
      if (net == nullptr) {
        return absl::ResourceExhaustedError(
            absl::StrCat("out of host memory for ", clients, " emulated clients of ", spec.name));
      }
      return net;
    }
    case DeviceSpec::Kind::kCuda: {
      if (absl::Status s = CheckDevice(device); !s.ok()) return s;
#if defined(FEDSIM_HAVE_CUDA)
      std::string error;
      std::unique_ptr<gpu::GpuNet> net =
          gpu::NewCudaNet(spec, device.index, clients, max_rows, &error);
      if (net == nullptr) {
        return absl::ResourceExhaustedError(
            absl::StrCat(device.ToString(), ": ", error,
                         "; use fewer clients per batch (--slots) or a smaller batch"));
      }
      return net;
#else
      break;
#endif
    }
  }
  return absl::InternalError("NewGpuNet: unknown device kind");
}

absl::StatusOr<std::unique_ptr<Model>> NewModelOn(const ModelConfig& config,
                                                  const DeviceSpec& device) {
  if (device.kind == DeviceSpec::Kind::kCpu) return NewModel(config);
  return NewGpuBackedModel(config, device);
}

}  // namespace fedsim
