#include "ml/cuda/cuda_device.h"

#include <cmath>
#include <cstdint>
#include <filesystem>
#include <string>
#include <system_error>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace fedsim {
namespace {

using ::testing::HasSubstr;
using ::testing::StartsWith;

// Whether the kernel driver knows an NVIDIA GPU, whatever the CUDA runtime
// says (a runtime newer than the driver reports no device, for example).
bool NvidiaGpuPresent() {
  std::error_code ec;
  if (std::filesystem::exists("/dev/nvidia0", ec)) return true;
  for (const auto& entry : std::filesystem::directory_iterator("/proc/driver/nvidia/gpus", ec)) {
    (void)entry;
    return true;
  }
  return false;
}

// The device tests skip, saying why, only where there is no GPU; a GPU that
// the runtime cannot use fails them. With a device they compare each
// kernel's result with the CPU's.
#define SKIP_WITHOUT_CUDA_DEVICE()                                                      \
  do {                                                                                  \
    if (CudaDeviceAvailable()) break;                                                   \
    if (NvidiaGpuPresent()) {                                                           \
      FAIL() << "an NVIDIA GPU is present, but " << CudaDeviceSummary();                \
    }                                                                                   \
    GTEST_SKIP() << CudaDeviceSummary() << " and no NVIDIA GPU in /dev or /proc "       \
                 << "(the kernels are compiled; this test needs a GPU and its driver)"; \
  } while (false)

// Deterministic values in [-1, 1) (no dependency beyond this file).
std::vector<float> Values(size_t n, uint32_t seed) {
  std::vector<float> v(n);
  uint32_t s = seed * 2654435761u + 1;
  for (float& x : v) {
    s ^= s << 13;
    s ^= s >> 17;
    s ^= s << 5;
    x = static_cast<float>(s >> 8) * (2.0f / 16777216.0f) - 1.0f;
  }
  return v;
}

// Runs everywhere: without a device every entry point fails cleanly and the
// summary says why; with one, the summary names device 0.
TEST(CudaDeviceTest, AvailabilityIsConsistent) {
  const int count = CudaDeviceCount();
  EXPECT_GE(count, 0);
  EXPECT_EQ(CudaDeviceAvailable(), count > 0);
  const std::string summary = CudaDeviceSummary();
  if (NvidiaGpuPresent()) {
    EXPECT_GT(count, 0) << "an NVIDIA GPU is present, but " << summary;
  }
  if (count == 0) {
    EXPECT_THAT(summary, StartsWith("no CUDA device"));
    float a = 1, b = 2, out = -1;
    EXPECT_FALSE(CudaAddVectors(&a, &b, &out, 1));
    EXPECT_FALSE(CudaMatMul(&a, &b, &out, 1, 1, 1));
    EXPECT_EQ(out, -1);  // untouched
  } else {
    EXPECT_THAT(summary, HasSubstr("device 0: "));
  }
}

TEST(CudaDeviceTest, AddVectorsMatchesCpu) {
  SKIP_WITHOUT_CUDA_DEVICE();
  const int n = 1000 + 37;  // not a multiple of the block size
  const std::vector<float> a = Values(n, 1), b = Values(n, 2);
  std::vector<float> out(n, -7.0f);
  ASSERT_TRUE(CudaAddVectors(a.data(), b.data(), out.data(), n)) << CudaDeviceSummary();
  // One IEEE addition per element: the device must match the CPU bit for bit.
  for (int i = 0; i < n; ++i) ASSERT_EQ(out[i], a[i] + b[i]) << "element " << i;
}

TEST(CudaDeviceTest, MatMulMatchesCpu) {
  SKIP_WITHOUT_CUDA_DEVICE();
  struct Shape {
    int m, k, n;
  };
  // Edges of the 16 x 16 tiles, a single element, the CNN's FC product, and
  // an empty depth (c must be zero).
  for (const Shape s : {Shape{33, 70, 47}, Shape{1, 1, 1}, Shape{16, 16, 16}, Shape{32, 3136, 512},
                        Shape{5, 0, 3}}) {
    const std::vector<float> a = Values(static_cast<size_t>(s.m) * s.k, 3);
    const std::vector<float> b = Values(static_cast<size_t>(s.k) * s.n, 4);
    std::vector<float> c(static_cast<size_t>(s.m) * s.n, -7.0f);
    ASSERT_TRUE(CudaMatMul(a.data(), b.data(), c.data(), s.m, s.k, s.n)) << CudaDeviceSummary();
    for (int i = 0; i < s.m; ++i) {
      for (int j = 0; j < s.n; ++j) {
        double want = 0, scale = 0;  // the exact sum, and the size of its terms
        for (int t = 0; t < s.k; ++t) {
          const double term = static_cast<double>(a[static_cast<size_t>(i) * s.k + t]) *
                              b[static_cast<size_t>(t) * s.n + j];
          want += term;
          scale += std::abs(term);
        }
        // Float accumulation over k terms: error <= k * 2^-24 * sum |terms|.
        const double tol = (s.k + 1) * 0x1p-24 * scale + 1e-30;
        ASSERT_NEAR(c[static_cast<size_t>(i) * s.n + j], want, tol)
            << s.m << "x" << s.k << "x" << s.n << " at (" << i << ", " << j << ")";
      }
    }
  }
}

}  // namespace
}  // namespace fedsim
