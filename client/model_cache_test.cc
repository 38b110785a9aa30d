#include "client/model_cache.h"

#include <atomic>
#include <thread>
#include <vector>

#include "absl/synchronization/notification.h"
#include "gtest/gtest.h"

namespace fedsim {
namespace {

TEST(ModelCacheTest, ConcurrentGetsOfOneModelShareOneDownload) {
  std::atomic<int> calls{0};
  absl::Notification fetching;  // the first Get is downloading
  absl::Notification release;   // let the download finish
  ModelCache cache(4, [&](const ModelRef& ref) -> absl::StatusOr<std::vector<float>> {
    ++calls;
    fetching.Notify();
    release.WaitForNotification();
    return std::vector<float>(10, static_cast<float>(ref.version));
  });
  std::vector<ModelCache::Params> got(8);
  std::vector<std::thread> threads;
  threads.emplace_back([&] { got[0] = *cache.Get(ModelRef::Global(3)); });
  fetching.WaitForNotification();
  // The download is in progress: these Gets find its entry and wait for it
  // (a Get arriving after the release would find the finished entry; either
  // way nobody downloads again).
  for (int i = 1; i < 8; ++i) {
    threads.emplace_back([&, i] {
      auto p = cache.Get(ModelRef::Global(3));
      ASSERT_TRUE(p.ok());
      got[i] = *p;
    });
  }
  release.Notify();
  for (auto& t : threads) t.join();
  EXPECT_EQ(calls.load(), 1);
  EXPECT_EQ(cache.downloads(), 1u);
  for (const auto& p : got) EXPECT_EQ(p, got[0]);
  EXPECT_EQ((*got[0])[0], 3.0f);
}

TEST(ModelCacheTest, KeepsTheMostRecentlyUsedModels) {
  std::vector<ModelRef> fetched;
  ModelCache cache(2, [&](const ModelRef& ref) -> absl::StatusOr<std::vector<float>> {
    fetched.push_back(ref);
    return std::vector<float>(1, static_cast<float>(ref.version));
  });
  const ModelRef a = ModelRef::Global(1);
  const ModelRef b = ModelRef::OfClient(1, 1);  // same version, another model
  const ModelRef c = ModelRef::Global(3);
  ASSERT_TRUE(cache.Get(a).ok());
  ASSERT_TRUE(cache.Get(b).ok());
  ASSERT_TRUE(cache.Get(a).ok());  // a is now the most recent
  ASSERT_TRUE(cache.Get(c).ok());  // evicts b
  ASSERT_TRUE(cache.Get(a).ok());
  ASSERT_TRUE(cache.Get(b).ok());
  EXPECT_EQ(fetched, (std::vector<ModelRef>{a, b, c, b}));
}

TEST(ModelCacheTest, FailedDownloadsAreNotCached) {
  int calls = 0;
  ModelCache cache(2, [&](const ModelRef&) -> absl::StatusOr<std::vector<float>> {
    if (++calls == 1) return absl::UnavailableError("flaky");
    return std::vector<float>(1, 1.0f);
  });
  EXPECT_EQ(cache.Get(ModelRef::Global(5)).status().code(), absl::StatusCode::kUnavailable);
  EXPECT_TRUE(cache.Get(ModelRef::Global(5)).ok());
  EXPECT_TRUE(cache.Get(ModelRef::Global(5)).ok());
  EXPECT_EQ(calls, 2);
}

}  // namespace
}  // namespace fedsim
