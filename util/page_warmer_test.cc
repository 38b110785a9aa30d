#include "util/page_warmer.h"

#include <sys/mman.h>

#include <chrono>
#include <cstdint>
#include <thread>
#include <vector>

#include "gtest/gtest.h"

namespace fedsim {
namespace {

TEST(PageWarmerTest, ReadsEveryPageOfEveryRangeAndChangesNothing) {
  std::vector<std::byte> a(10 * 4096 + 1, std::byte{7});  // 11 pages
  std::vector<std::byte> b(4096, std::byte{9});           // 1 page
  const std::vector<std::byte> a_before = a;
  PageWarmer warmer(
      {std::span<const std::byte>(a), std::span<const std::byte>(), std::span<const std::byte>(b)});
  EXPECT_EQ(warmer.pages_total(), 12u);
  warmer.Wait();
  EXPECT_EQ(warmer.pages_read(), 12u);
  EXPECT_EQ(a, a_before);
}

TEST(PageWarmerTest, RunsAtIdlePriorityWhereAllowed) {
  std::vector<std::byte> a(4096);
  PageWarmer warmer({std::span<const std::byte>(a)});
  warmer.Wait();
  // Linux lets any thread lower itself to SCHED_IDLE, unless a resource
  // limit forbids changing policy (RLIMIT_NICE does not apply to it).
  EXPECT_TRUE(warmer.idle_priority());
}

TEST(PageWarmerTest, NothingToReadStartsNoThread) {
  PageWarmer warmer({std::span<const std::byte>()});
  EXPECT_EQ(warmer.pages_total(), 0u);
  warmer.Wait();
  EXPECT_EQ(warmer.pages_read(), 0u);
  EXPECT_FALSE(warmer.idle_priority());
}

TEST(PageWarmerTest, StopEndsTheReadingEarly) {
  // 1 GiB reserved, never backed: reading all of it (262,144 faults on the
  // zero page) takes a second or more; Stop returns within one page.
  const size_t bytes = size_t{1} << 30;
  void* p = mmap(nullptr, bytes, PROT_READ, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
  ASSERT_NE(p, MAP_FAILED);
  {
    PageWarmer warmer({std::span<const std::byte>(static_cast<const std::byte*>(p), bytes)});
    while (warmer.pages_read() == 0) std::this_thread::sleep_for(std::chrono::milliseconds(1));
    const auto start = std::chrono::steady_clock::now();
    warmer.Stop();
    EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(2));
    EXPECT_GT(warmer.pages_read(), 0u);
    EXPECT_LT(warmer.pages_read(), warmer.pages_total());
    warmer.Stop();  // idempotent
  }
  munmap(p, bytes);
}

}  // namespace
}  // namespace fedsim
