// Test helpers shared by the GPU backend's tests: the emulation's
// (ml/gpu/*_test.cc, every machine) and the CUDA device's
// (ml/cuda/cuda_net_test.cc, skipped without a GPU). They compare a model
// on a GPU backend with the Eigen model, layer by layer.
#ifndef FEDSIM_ML_GPU_BACKEND_TEST_UTIL_H_
#define FEDSIM_ML_GPU_BACKEND_TEST_UTIL_H_

#include <algorithm>
#include <cmath>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "data/dataset.h"
#include "gtest/gtest.h"
#include "ml/gpu/device.h"
#include "ml/model.h"
#include "util/rng.h"

namespace fedsim::gpu_test {

struct RandomBatch {
  std::vector<float> x;
  std::vector<int32_t> y;
  int n = 0;
  BatchView view() const { return BatchView{x.data(), y.data(), n}; }
};

inline RandomBatch MakeBatch(const ModelConfig& config, int n, uint64_t seed) {
  RandomBatch b;
  b.n = n;
  Rng rng(seed, "test-batch");
  b.x.resize(static_cast<size_t>(n) * config.input_dim());
  for (float& v : b.x) v = static_cast<float>(rng.Uniform(0.0, 1.0));
  for (int i = 0; i < n; ++i) {
    b.y.push_back(static_cast<int32_t>(rng.Uniform(0.0, 1.0) * config.num_classes) %
                  config.num_classes);
  }
  return b;
}

// `rows` random examples of `c`'s input shape whose labels depend on the
// input (so that training makes progress).
inline Dataset RandomData(const ModelConfig& c, size_t rows, uint64_t seed) {
  Rng rng(seed, "test-data");
  std::vector<float> x(rows * c.input_dim());
  std::vector<int32_t> y(rows);
  for (float& v : x) v = static_cast<float>(rng.Uniform(0, 1));
  for (size_t r = 0; r < rows; ++r) {
    y[r] = static_cast<int32_t>(x[r * c.input_dim()] * c.num_classes) % c.num_classes;
  }
  return Dataset::FromF32(c.example_shape(), c.num_classes, std::move(x), std::move(y));
}

// max |a - b| / max |b| (0 when both are zero): the normwise relative error.
inline double RelError(std::span<const float> a, std::span<const float> b) {
  double diff = 0, scale = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    diff = std::max(diff, std::abs(static_cast<double>(a[i]) - b[i]));
    scale = std::max(scale, std::abs(static_cast<double>(b[i])));
  }
  return scale > 0 ? diff / scale : diff;
}

// Forward (logits), loss, every layer's parameter gradient and the input
// gradient of `config` on `device` against the Eigen model, on a random
// batch of n rows: each within `tol` (normwise relative). Returns the
// largest error seen.
inline double ExpectMatchesCpu(const ModelConfig& config, const DeviceSpec& device, int n,
                               double tol) {
  absl::StatusOr<std::unique_ptr<Model>> cpu = NewModel(config);
  absl::StatusOr<std::unique_ptr<Model>> gpu = NewModelOn(config, device);
  EXPECT_TRUE(cpu.ok()) << cpu.status();
  EXPECT_TRUE(gpu.ok()) << gpu.status();
  if (!cpu.ok() || !gpu.ok()) return 1.0;
  const std::string what = config.ToString() + " on " + device.ToString();
  EXPECT_EQ((*gpu)->NumParams(), (*cpu)->NumParams()) << what;
  std::vector<float> params((*cpu)->NumParams());
  (*cpu)->Init(11, params);
  // Biases start at zero; move them so that their use is tested too.
  Rng rng(3, "test-params");
  for (float& p : params) p += static_cast<float>(rng.Uniform(-0.01, 0.01));
  const RandomBatch batch = MakeBatch(config, n, 5);
  const int k = config.num_classes;
  std::vector<float> logits_cpu(static_cast<size_t>(n) * k), logits_gpu(logits_cpu.size());
  (*cpu)->Logits(params, batch.view(), logits_cpu);
  (*gpu)->Logits(params, batch.view(), logits_gpu);
  double worst = RelError(logits_gpu, logits_cpu);
  EXPECT_LE(worst, tol) << what << ": logits";
  std::vector<float> g_cpu(params.size()), g_gpu(params.size());
  std::vector<float> dx_cpu(batch.x.size()), dx_gpu(batch.x.size());
  const float l_cpu = (*cpu)->ForwardBackward(params, batch.view(), g_cpu, dx_cpu);
  const float l_gpu = (*gpu)->ForwardBackward(params, batch.view(), g_gpu, dx_gpu);
  EXPECT_NEAR(l_gpu, l_cpu, tol * std::abs(l_cpu)) << what << ": loss";
  const gpu::NetSpec spec = NetSpecFor(config);
  for (size_t li = 0; li < spec.layers.size(); ++li) {
    const gpu::NetLayer& l = spec.layers[li];
    if (l.num_params == 0) continue;
    const double e = RelError(std::span<const float>(g_gpu).subspan(l.offset, l.num_params),
                              std::span<const float>(g_cpu).subspan(l.offset, l.num_params));
    EXPECT_LE(e, tol) << what << ": d loss / d params of layer " << li;
    worst = std::max(worst, e);
  }
  const double ex = RelError(dx_gpu, dx_cpu);
  EXPECT_LE(ex, tol) << what << ": d loss / d input";
  worst = std::max(worst, ex);
  // The input-gradient-only pass (an attack's) equals the full one.
  std::vector<float> dx_only(batch.x.size());
  (*gpu)->ForwardBackward(params, batch.view(), {}, dx_only);
  EXPECT_EQ(dx_only, dx_gpu) << what << ": input gradient alone";
  const EvalResult e_cpu = (*cpu)->Evaluate(params, batch.view());
  const EvalResult e_gpu = (*gpu)->Evaluate(params, batch.view());
  EXPECT_EQ(e_gpu.count, e_cpu.count) << what;
  EXPECT_NEAR(e_gpu.loss_sum, e_cpu.loss_sum, tol * std::abs(e_cpu.loss_sum)) << what;
  EXPECT_NEAR(static_cast<double>(e_gpu.correct), static_cast<double>(e_cpu.correct), 1) << what;
  return worst;
}

// Small architectures that cover every layer kind quickly on the emulation.
inline ModelConfig SmallMlp() {
  ModelConfig c;
  c.kind = ModelConfig::Kind::kMlp;
  c.input_channels = 1;
  c.input_height = 6;
  c.input_width = 5;
  c.hidden = {17, 9};
  c.num_classes = 7;
  return c;
}

inline ModelConfig SmallCnn() {
  ModelConfig c;
  c.kind = ModelConfig::Kind::kCnn;
  c.input_channels = 2;
  c.input_height = 10;
  c.input_width = 9;
  c.conv1 = 3;
  c.conv2 = 5;
  c.kernel = 3;
  c.fc = 11;
  c.num_classes = 4;
  return c;
}

}  // namespace fedsim::gpu_test

#endif  // FEDSIM_ML_GPU_BACKEND_TEST_UTIL_H_
