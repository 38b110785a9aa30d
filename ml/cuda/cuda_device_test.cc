#include "ml/cuda/cuda_device.h"

#include <vector>

#include "gtest/gtest.h"

namespace fedsim {
namespace {

TEST(CudaDeviceTest, CountIsConsistentWithAvailability) {
  EXPECT_GE(CudaDeviceCount(), 0);
  EXPECT_EQ(CudaDeviceAvailable(), CudaDeviceCount() > 0);
}

TEST(CudaDeviceTest, AddVectorsOnDevice) {
  if (!CudaDeviceAvailable()) GTEST_SKIP() << "no CUDA device on this machine";
  const int n = 1000;
  std::vector<float> a(n), b(n), out(n, -1.0f);
  for (int i = 0; i < n; ++i) {
    a[i] = static_cast<float>(i);
    b[i] = 0.5f * static_cast<float>(i);
  }
  ASSERT_TRUE(CudaAddVectors(a.data(), b.data(), out.data(), n));
  for (int i = 0; i < n; ++i) EXPECT_EQ(out[i], 1.5f * static_cast<float>(i)) << i;
}

TEST(CudaDeviceTest, AddVectorsFailsCleanlyWithoutDevice) {
  if (CudaDeviceAvailable()) GTEST_SKIP() << "a device is present";
  float a = 1, b = 2, out = 0;
  EXPECT_FALSE(CudaAddVectors(&a, &b, &out, 1));
}

}  // namespace
}  // namespace fedsim
