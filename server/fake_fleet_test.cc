#include "server/fake_fleet.h"

#include <numeric>

#include "gtest/gtest.h"
#include "util/sanitizers.h"

namespace fedsim {
namespace {

// 200 workers, each on its own connection, all long-polling at once: the
// server parks every poll without a thread, then leases a burst of 600
// tasks, each to exactly one worker, and receives every result once.
TEST(FakeFleetTest, TwoHundredWorkersPollAtOnceWithBoundedThreadsAndLoseNoTask) {
  constexpr int kWorkers = 200;
  ASSERT_GE(RaiseOpenFileLimit(), 4u * kWorkers + 64);
  FakeFleetOptions options;
  options.workers = kWorkers;
  options.tasks_per_worker = 3;
  if (kSanitizerBuild) options.park_timeout_s = 600;  // 200 connections take minutes under TSan
  absl::StatusOr<FakeFleetReport> report = RunFakeFleet(options);
  ASSERT_TRUE(report.ok()) << report.status();

  // Every poll was parked at the same moment, each on its own connection.
  EXPECT_EQ(report->polls_parked, uint64_t{kWorkers});
  EXPECT_GE(report->sockets_parked, 2 * kWorkers);
  // ... and the threads did not grow with them: a thread per waiting worker
  // would add 200. (gRPC's own pools, the reaper, poll timer and the fleet's
  // pushers and sampler are a few dozen at most.)
  EXPECT_LT(report->threads_parked - report->threads_before, 64)
      << "threads before " << report->threads_before << ", with " << kWorkers << " parked polls "
      << report->threads_parked;
  EXPECT_LT(report->threads_peak - report->threads_before, 64);

  // No task lost, none leased twice.
  ASSERT_EQ(report->times_leased.size(), size_t{3 * kWorkers});
  for (size_t i = 0; i < report->times_leased.size(); ++i) {
    EXPECT_EQ(report->times_leased[i], 1) << "task " << i + 1;
  }
  EXPECT_EQ(report->stats.updates_accepted, uint64_t{3 * kWorkers});
  EXPECT_EQ(report->stats.duplicates, 0u);
  EXPECT_EQ(report->stats.rejected, 0u);
  EXPECT_EQ(report->stats.tasks_requeued, 0u);
  EXPECT_EQ(report->stats.leases_expired, 0u);
  EXPECT_EQ(report->stats.workers_registered, uint64_t{kWorkers});
  EXPECT_EQ(report->stats.polls_parked, 0u);  // all answered run_finished
}

}  // namespace
}  // namespace fedsim
