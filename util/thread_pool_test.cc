#include "util/thread_pool.h"

#include <atomic>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "gtest/gtest.h"

namespace fedsim {
namespace {

TEST(ThreadPoolTest, OneThreadRunsClosuresInScheduleOrder) {
  std::vector<int> order;  // only the pool's one thread writes it
  {
    ThreadPool pool(1);
    for (int i = 0; i < 100; ++i) pool.Schedule([&order, i] { order.push_back(i); });
  }  // the destructor drains the queue
  ASSERT_EQ(order.size(), 100u);
  for (int i = 0; i < 100; ++i) EXPECT_EQ(order[i], i);
}

TEST(ThreadPoolTest, AllThreadsRunAtOnce) {
  constexpr int kThreads = 4;
  absl::Mutex mu;
  int started = 0;
  std::atomic<int> met{0};
  {
    ThreadPool pool(kThreads);
    EXPECT_EQ(pool.num_threads(), kThreads);
    for (int i = 0; i < kThreads; ++i) {
      pool.Schedule([&] {
        absl::MutexLock lock(&mu);
        ++started;
        // Only possible when all kThreads closures are running together. The
        // real-time bound only turns a broken pool into a failure, not a hang.
        if (mu.AwaitWithTimeout(absl::Condition(
                                    +[](int* s) { return *s == kThreads; }, &started),
                                absl::Seconds(30))) {
          ++met;
        }
      });
    }
  }
  EXPECT_EQ(met.load(), kThreads);
}

TEST(ThreadPoolTest, DestructorRunsClosuresScheduledByClosures) {
  std::atomic<int> ran{0};
  {
    ThreadPool pool(2);
    for (int i = 0; i < 10; ++i) {
      pool.Schedule([&] {
        ++ran;
        pool.Schedule([&] { ++ran; });
      });
    }
  }
  EXPECT_EQ(ran.load(), 20);
}

TEST(ThreadPoolTest, OutstandingCountsQueuedAndRunning) {
  ThreadPool pool(1);
  absl::Mutex mu;
  bool release = false;
  bool entered = false;
  pool.Schedule([&] {
    absl::MutexLock lock(&mu);
    entered = true;
    mu.Await(absl::Condition(&release));
  });
  pool.Schedule([] {});
  {
    absl::MutexLock lock(&mu);
    mu.Await(absl::Condition(&entered));
  }
  EXPECT_EQ(pool.outstanding(), 2u);  // one running, one queued
  {
    absl::MutexLock lock(&mu);
    release = true;
  }
}

TEST(ParallelForTest, CallsEveryIndexOnceAndWaits) {
  ThreadPool pool(3);
  std::vector<std::atomic<int>> hits(37);
  ParallelFor(&pool, hits.size(), [&](size_t i) { ++hits[i]; });
  for (size_t i = 0; i < hits.size(); ++i) EXPECT_EQ(hits[i].load(), 1) << i;
}

TEST(ParallelForTest, NullPoolRunsInlineInOrder) {
  std::vector<size_t> order;
  ParallelFor(nullptr, 5, [&](size_t i) { order.push_back(i); });
  EXPECT_EQ(order, (std::vector<size_t>{0, 1, 2, 3, 4}));
  ParallelFor(nullptr, 0, [&](size_t) { ADD_FAILURE(); });
}

}  // namespace
}  // namespace fedsim
