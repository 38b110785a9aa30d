// The GPU backend's model on its CPU emulation against the Eigen model:
// every layer's forward and backward, the input gradient, a caller's logit
// loss, evaluation in chunks. The CUDA device runs the same code
// (ml/cuda/cuda_net_test.cc repeats these checks on a GPU).
#include "ml/gpu/gpu_model.h"

#include <cmath>
#include <vector>

#include "gtest/gtest.h"
#include "ml/gpu/backend_test_util.h"
#include "ml/gpu/device.h"

namespace fedsim {
namespace {

using gpu_test::ExpectMatchesCpu;
using gpu_test::MakeBatch;

const DeviceSpec kEmulated{DeviceSpec::Kind::kEmulated, 0};

TEST(GpuModelTest, SoftmaxMatchesTheCpuModel) {
  ModelConfig c;
  c.kind = ModelConfig::Kind::kSoftmax;
  c.input_height = 7;
  c.input_width = 7;
  c.num_classes = 5;
  EXPECT_LE(ExpectMatchesCpu(c, kEmulated, 9, 1e-4), 1e-4);
}

TEST(GpuModelTest, MlpMatchesTheCpuModel) {
  EXPECT_LE(ExpectMatchesCpu(gpu_test::SmallMlp(), kEmulated, 13, 1e-4), 1e-4);
}

TEST(GpuModelTest, CnnMatchesTheCpuModel) {
  EXPECT_LE(ExpectMatchesCpu(gpu_test::SmallCnn(), kEmulated, 5, 1e-4), 1e-4);
}

TEST(GpuModelTest, FashionMnistMlpMatchesTheCpuModel) {
  ModelConfig c;  // the default: mlp(784-200-200-10)
  EXPECT_LE(ExpectMatchesCpu(c, kEmulated, 10, 1e-4), 1e-4);
}

// A batch larger than the model's chunk grows it; evaluation runs in chunks.
TEST(GpuModelTest, LargeBatchesAndChunkedEvaluation) {
  EXPECT_LE(ExpectMatchesCpu(gpu_test::SmallMlp(), kEmulated, 600, 1e-4), 1e-4);
}

// A loss of the caller's (TRADES' kind) is back-propagated as given.
class HalfSquares final : public LogitLoss {
 public:
  double Compute(std::span<const float> logits, const BatchView&, int,
                 std::span<float> dlogits) override {
    double s = 0;
    for (size_t i = 0; i < logits.size(); ++i) {
      s += 0.5 * logits[i] * logits[i];
      dlogits[i] = logits[i];
    }
    return s;
  }
};

TEST(GpuModelTest, CallerGivenLogitLoss) {
  const ModelConfig c = gpu_test::SmallCnn();
  absl::StatusOr<std::unique_ptr<Model>> cpu = NewModel(c);
  absl::StatusOr<std::unique_ptr<Model>> gpu = NewModelOn(c, kEmulated);
  ASSERT_TRUE(cpu.ok() && gpu.ok());
  std::vector<float> params((*cpu)->NumParams());
  (*cpu)->Init(4, params);
  const gpu_test::RandomBatch b = MakeBatch(c, 6, 8);
  HalfSquares loss;
  std::vector<float> g1(params.size()), g2(params.size()), d1(b.x.size()), d2(b.x.size());
  const float v1 = (*cpu)->ForwardBackwardLoss(params, b.view(), loss, g1, d1);
  const float v2 = (*gpu)->ForwardBackwardLoss(params, b.view(), loss, g2, d2);
  EXPECT_NEAR(v2, v1, 1e-4 * std::abs(v1));
  EXPECT_LE(gpu_test::RelError(g2, g1), 1e-4);
  EXPECT_LE(gpu_test::RelError(d2, d1), 1e-4);
}

TEST(GpuModelTest, InitIsTheCpuModels) {
  const ModelConfig c = gpu_test::SmallCnn();
  absl::StatusOr<std::unique_ptr<Model>> cpu = NewModel(c);
  absl::StatusOr<std::unique_ptr<Model>> gpu = NewModelOn(c, kEmulated);
  ASSERT_TRUE(cpu.ok() && gpu.ok());
  std::vector<float> a((*cpu)->NumParams()), b(a.size());
  (*cpu)->Init(9, a);
  (*gpu)->Init(9, b);
  EXPECT_EQ(a, b);
}

TEST(DeviceSpecTest, ParsesAndRefuses) {
  EXPECT_EQ(ParseDeviceSpec("cpu")->ToString(), "cpu");
  EXPECT_EQ(ParseDeviceSpec("cuda")->ToString(), "cuda:0");
  EXPECT_EQ(ParseDeviceSpec("cuda:3")->index, 3);
  EXPECT_EQ(ParseDeviceSpec("emulated")->kind, DeviceSpec::Kind::kEmulated);
  for (const char* bad : {"gpu", "cuda:", "cuda:-1", "cuda:x", ""}) {
    absl::StatusOr<DeviceSpec> d = ParseDeviceSpec(bad);
    ASSERT_FALSE(d.ok()) << bad;
    EXPECT_NE(d.status().message().find("cuda:N"), std::string::npos) << d.status();
  }
}

// Without a GPU, asking for one is refused with what to do; with one, it is
// accepted. (Which branch runs depends on the machine; both assert.)
TEST(DeviceSpecTest, CudaIsRefusedWhereItCannotRun) {
  const DeviceSpec cuda{DeviceSpec::Kind::kCuda, 0};
  const absl::Status s = CheckDevice(cuda);
  if (CudaDevicesVisible() > 0) {
    EXPECT_TRUE(s.ok()) << s;
  } else {
    EXPECT_EQ(s.code(), absl::StatusCode::kFailedPrecondition) << s;
    EXPECT_NE(s.message().find("--device=cpu"), std::string::npos) << s;
    EXPECT_FALSE(NewModelOn(gpu_test::SmallMlp(), cuda).ok());
  }
  const DeviceSpec far{DeviceSpec::Kind::kCuda, 99};
  EXPECT_FALSE(CheckDevice(far).ok());
}

}  // namespace
}  // namespace fedsim
