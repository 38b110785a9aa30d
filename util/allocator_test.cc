#include "util/allocator.h"

#include <sys/resource.h>

#include <thread>
#include <vector>

#include "gtest/gtest.h"
#include "util/sanitizers.h"

namespace fedsim {
namespace {

long MinorFaults() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return u.ru_minflt;
}

// What a slot does per task: a few model-sized buffers (here six of about
// 0.8 MB, the MLP's size), written and freed.
void OneTask() {
  std::vector<std::vector<float>> buffers;
  for (int k = 0; k < 6; ++k) buffers.emplace_back(200000 + 1000 * k, 1.0f);
}

TEST(AllocatorTest, FreedBuffersAreReusedWithoutPageFaults) {
  if (kSanitizerBuild) GTEST_SKIP() << "a sanitizer replaces the C library's allocator";
  ASSERT_TRUE(KeepFreedMemoryForReuse());
  // On a fresh thread, as a slot trains: its own heap. With glibc's defaults
  // every task faulted its ~1,170 pages in again (the kernel had them back);
  // kept for reuse, none after the first task.
  long faults = -1;
  std::thread slot([&faults] {
    OneTask();
    const long before = MinorFaults();
    for (int i = 0; i < 50; ++i) OneTask();
    faults = MinorFaults() - before;
  });
  slot.join();
  EXPECT_LT(faults, 50 * 20) << faults / 50 << " page faults per task";
}

}  // namespace
}  // namespace fedsim
