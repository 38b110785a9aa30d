#include "client/model_cache.h"

#include <atomic>
#include <thread>
#include <vector>

#include "absl/time/clock.h"
#include "gtest/gtest.h"

namespace fedsim {
namespace {

TEST(ModelCacheTest, ConcurrentGetsOfOneVersionShareOneDownload) {
  std::atomic<int> calls{0};
  ModelCache cache(4, [&](Version v) -> absl::StatusOr<std::vector<float>> {
    ++calls;
    absl::SleepFor(absl::Milliseconds(50));  // long enough for everyone to pile up
    return std::vector<float>(10, static_cast<float>(v));
  });
  std::vector<std::thread> threads;
  std::vector<ModelCache::Params> got(8);
  for (int i = 0; i < 8; ++i) {
    threads.emplace_back([&, i] {
      auto p = cache.Get(3);
      ASSERT_TRUE(p.ok());
      got[i] = *p;
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(calls.load(), 1);
  EXPECT_EQ(cache.downloads(), 1u);
  for (const auto& p : got) EXPECT_EQ(p, got[0]);
  EXPECT_EQ((*got[0])[0], 3.0f);
}

TEST(ModelCacheTest, KeepsTheMostRecentlyUsedVersions) {
  std::vector<Version> fetched;
  ModelCache cache(2, [&](Version v) -> absl::StatusOr<std::vector<float>> {
    fetched.push_back(v);
    return std::vector<float>(1, static_cast<float>(v));
  });
  ASSERT_TRUE(cache.Get(1).ok());
  ASSERT_TRUE(cache.Get(2).ok());
  ASSERT_TRUE(cache.Get(1).ok());  // 1 is now the most recent
  ASSERT_TRUE(cache.Get(3).ok());  // evicts 2
  ASSERT_TRUE(cache.Get(1).ok());
  ASSERT_TRUE(cache.Get(2).ok());
  EXPECT_EQ(fetched, (std::vector<Version>{1, 2, 3, 2}));
}

TEST(ModelCacheTest, FailedDownloadsAreNotCached) {
  int calls = 0;
  ModelCache cache(2, [&](Version) -> absl::StatusOr<std::vector<float>> {
    if (++calls == 1) return absl::UnavailableError("flaky");
    return std::vector<float>(1, 1.0f);
  });
  EXPECT_EQ(cache.Get(5).status().code(), absl::StatusCode::kUnavailable);
  EXPECT_TRUE(cache.Get(5).ok());
  EXPECT_TRUE(cache.Get(5).ok());
  EXPECT_EQ(calls, 2);
}

}  // namespace
}  // namespace fedsim
