#include "tools/subprocess.h"

#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "gtest/gtest.h"

namespace fedsim {
namespace {

// Each test runs in a process of its own (gtest_discover_tests), which has
// one thread until the test starts one.

TEST(SubprocessForkTest, AForkedChildRunsItsBodyAndItsStderrAndExitCodeAreKept) {
  std::vector<std::string> lines;
  SubprocessSet set([&lines](const std::string& line) { lines.push_back(line); });
  const int parent_value = 41;  // the child has a copy of this process's memory
  auto started = set.Fork("child", [&parent_value]() -> int {
    std::fprintf(stderr, "value %d\n", parent_value + 1);
    return 3;
  });
  ASSERT_TRUE(started.ok()) << started.status();
  set.StartPendingReaders();
  set.WaitAll(30);
  ASSERT_EQ(set.children().size(), 1u);
  const SubprocessSet::Child child = set.children()[0];
  EXPECT_TRUE(child.exited);
  EXPECT_EQ(child.exit_code, 3);
  ASSERT_EQ(child.stderr_tail.size(), 1u);
  EXPECT_EQ(child.stderr_tail[0], "value 42");
  EXPECT_EQ(lines, std::vector<std::string>{"[child] value 42"});
  EXPECT_TRUE(set.AnyFailed());
  EXPECT_NE(set.DescribeFailures().find("child (pid"), std::string::npos);
  EXPECT_NE(set.DescribeFailures().find("exited with status 3"), std::string::npos);
}

TEST(SubprocessForkTest, OnlyTheKeptDescriptorsStayOpenInTheChild) {
  int kept[2], other[2];
  ASSERT_EQ(pipe(kept), 0);
  ASSERT_EQ(pipe(other), 0);
  SubprocessSet set;
  // Exit code: bit 0 set when the kept descriptor is open, bit 1 when the
  // other one is.
  auto started = set.Fork("child",
                          [&]() -> int {
                            return (fcntl(kept[1], F_GETFD) != -1 ? 1 : 0) |
                                   (fcntl(other[1], F_GETFD) != -1 ? 2 : 0);
                          },
                          {kept[1]});
  ASSERT_TRUE(started.ok()) << started.status();
  set.WaitAll(30);
  EXPECT_EQ(set.children()[0].exit_code, 1);
  for (int fd : {kept[0], kept[1], other[0], other[1]}) close(fd);
}

TEST(SubprocessForkTest, ForkRefusesWhileAnotherThreadRuns) {
  ASSERT_EQ(SubprocessSet::ThreadCount(), 1);
  absl::Notification stop;
  std::thread other([&stop] { stop.WaitForNotification(); });
  EXPECT_EQ(SubprocessSet::ThreadCount(), 2);
  SubprocessSet set;
  auto started = set.Fork("child", [] { return 0; });
  stop.Notify();
  other.join();
  ASSERT_FALSE(started.ok());
  EXPECT_TRUE(absl::IsFailedPrecondition(started.status())) << started.status();
  EXPECT_NE(started.status().message().find("2 threads"), std::string::npos) << started.status();
  EXPECT_TRUE(set.children().empty());
}

TEST(SubprocessForkTest, SeveralForksBeforeTheReadersStartAllReport) {
  std::vector<std::string> lines;
  std::mutex mu;
  SubprocessSet set([&](const std::string& line) {
    std::lock_guard<std::mutex> lock(mu);
    lines.push_back(line);
  });
  for (int i = 0; i < 3; ++i) {
    auto started = set.Fork("child-" + std::to_string(i), [i]() -> int {
      std::fprintf(stderr, "hello from %d\n", i);
      return 0;
    });
    ASSERT_TRUE(started.ok()) << started.status();
  }
  EXPECT_EQ(SubprocessSet::ThreadCount(), 1);  // no reader yet
  set.StartPendingReaders();
  set.WaitAll(30);
  EXPECT_FALSE(set.AnyFailed()) << set.DescribeFailures();
  std::sort(lines.begin(), lines.end());
  EXPECT_EQ(lines, (std::vector<std::string>{"[child-0] hello from 0", "[child-1] hello from 1",
                                             "[child-2] hello from 2"}));
}

}  // namespace
}  // namespace fedsim

namespace fedsim {
namespace {

TEST(SubprocessWriteTest, WritesToEachPipeAndSurvivesOneWhoseReaderIsGone) {
  int alive[2], gone[2];
  ASSERT_EQ(pipe(alive), 0);
  ASSERT_EQ(pipe(gone), 0);
  close(gone[0]);  // as if that child had died: a write there raises SIGPIPE
  SubprocessSet::WriteToEachAndClose({gone[1], alive[1]}, "unix:/tmp/x.sock");
  // Still here (SIGPIPE would have ended the test process), and the live
  // reader got the whole text, then the end of the pipe.
  char buf[64];
  std::string got;
  for (ssize_t n; (n = read(alive[0], buf, sizeof(buf))) > 0;) got.append(buf, n);
  EXPECT_EQ(got, "unix:/tmp/x.sock");
  close(alive[0]);
  // Nothing is left pending or blocked on this thread.
  sigset_t pending, mask;
  sigpending(&pending);
  EXPECT_EQ(sigismember(&pending, SIGPIPE), 0);
  pthread_sigmask(SIG_BLOCK, nullptr, &mask);
  EXPECT_EQ(sigismember(&mask, SIGPIPE), 0);
}

// WaitAll notices an exit at once (a pidfd per child), not at its next
// pause: with pauses growing to 20 ms, a child was reaped up to 20 ms after
// it exited (10 ms in the median). The child's last stderr line marks its
// exit; the median of seven tries, whose exits fall at different points of
// a pause, tolerates a busy machine.
TEST(SubprocessWaitTest, WaitAllReturnsAsSoonAsTheLastChildExits) {
  std::vector<double> late_ms;
  for (int trial = 0; trial < 7; ++trial) {
    std::mutex mu;
    absl::Time said_bye = absl::InfiniteFuture();
    SubprocessSet set([&](const std::string&) {
      std::lock_guard<std::mutex> lock(mu);
      said_bye = absl::Now();
    });
    // Exits spread over a pause of the old schedule's.
    const std::string sleep = absl::StrCat("sleep 0.", 100 + 3 * trial, "; echo bye >&2");
    auto started = set.Start("sleeper", {"/bin/sh", "-c", sleep});
    ASSERT_TRUE(started.ok()) << started.status();
    set.WaitAll(30);
    const absl::Time returned = absl::Now();
    ASSERT_EQ(set.children().size(), 1u);
    EXPECT_EQ(set.children()[0].exit_code, 0);
    std::lock_guard<std::mutex> lock(mu);
    ASSERT_NE(said_bye, absl::InfiniteFuture());
    late_ms.push_back(absl::ToDoubleMilliseconds(returned - said_bye));
  }
  std::sort(late_ms.begin(), late_ms.end());
  EXPECT_LT(late_ms[3], 5.0) << "median ms from the child's last line to WaitAll's return";
}

// A child that outlives the wait is stopped, and marked as stopped by it.
TEST(SubprocessWaitTest, WaitAllStopsAChildThatOutlivesIt) {
  SubprocessSet set;
  auto started = set.Start("stuck", {"/bin/sleep", "30"});
  ASSERT_TRUE(started.ok()) << started.status();
  const absl::Time start = absl::Now();
  set.WaitAll(0.05);
  EXPECT_LT(absl::Now() - start, absl::Seconds(10));
  ASSERT_EQ(set.children().size(), 1u);
  const SubprocessSet::Child child = set.children()[0];
  EXPECT_TRUE(child.exited);
  EXPECT_TRUE(child.killed_by_wait);
  EXPECT_EQ(child.exit_code, 128 + SIGTERM);
  EXPECT_FALSE(set.AnyFailed());
}

}  // namespace
}  // namespace fedsim
