// A set of child processes (ninja's subprocess.h habit): start children,
// collect their stderr, forward signals, reap them all, tell who failed.
// A child is a new program (Start: posix_spawn) or a copy of this process
// that runs a function (Fork), which shares what this process has already
// loaded instead of loading it again.
//
// Thread safety: Start/Fork/Wait/Signal from one thread; the output readers
// run on threads of their own and are joined by Wait. WaitAll's timeouts are
// measured on the injected clock; on the system clock it wakes as soon as a
// child exits (a pidfd per child), on another it pauses on that clock.
#ifndef FEDSIM_TOOLS_SUBPROCESS_H_
#define FEDSIM_TOOLS_SUBPROCESS_H_

#include <sys/types.h>

#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "core/clock.h"

namespace fedsim {

class SubprocessSet {
 public:
  struct Child {
    std::string name;
    pid_t pid = -1;
    bool exited = false;
    int exit_code = 0;  // valid when exited; 128 + signal when killed by one
    // WaitAll had to kill it: it outlived the wait, which is not its failure.
    bool killed_by_wait = false;
    std::deque<std::string> stderr_tail;  // last lines of its stderr
  };

  // `on_line` (may be empty) sees every stderr line of every child, from a
  // reader thread, prefixed with the child's name. `clock` must outlive the
  // set. Default clock: SystemClock().
  explicit SubprocessSet(std::function<void(const std::string&)> on_line = {},
                         Clock* clock = SystemClock())
      : on_line_(std::move(on_line)), clock_(clock) {}
  ~SubprocessSet();

  // Starts argv[0] with argv (stderr captured). Its stdout is inherited, or
  // appended to the file `stdout_path` when that is not empty (created if
  // missing).
  absl::StatusOr<size_t> Start(const std::string& name, const std::vector<std::string>& argv,
                               const std::string& stdout_path = "");

  // Runs `body` in a forked copy of this process; the child's stderr is
  // captured as Start's is, its stdout inherited, and it exits with
  // _exit(body()) after flushing stdio (never returning into the caller's
  // frames, whose destructors belong to this process). In the child,
  // SIGINT, SIGTERM and SIGPIPE take their default action, it gets SIGTERM
  // when this process dies (PR_SET_PDEATHSIG), and every descriptor above
  // stderr is closed except `keep_fds`.
  // A fork copies only the calling thread, so a lock another thread holds
  // would stay held in the child forever: Fork refuses (FailedPrecondition)
  // unless this process has exactly one thread. That is why the stderr
  // readers of forked children start only at StartPendingReaders (or
  // WaitAll): fork every child first, then call it.
  absl::StatusOr<size_t> Fork(const std::string& name, const std::function<int()>& body,
                              const std::vector<int>& keep_fds = {});
  // Starts the stderr readers of the children Fork started.
  void StartPendingReaders();
  // The threads of this process (/proc/self/task); 0 when it cannot tell.
  static int ThreadCount();
  // Writes `bytes` to each descriptor and closes it: how a parent hands
  // forked children what they wait for on a pipe. A descriptor whose reader
  // is gone is skipped; the SIGPIPE that write raises is blocked and
  // dropped, so a child that died early cannot end this process.
  static void WriteToEachAndClose(const std::vector<int>& fds, const std::string& bytes);

  // Reaps children that have exited, without blocking. Returns how many are still running.
  size_t Poll();
  // Waits up to timeout_s for all to exit, then SIGTERMs the rest, gives them
  // a few seconds, SIGKILLs what is left and reaps them; those are marked
  // killed_by_wait and not counted as failures.
  void WaitAll(double timeout_s);
  void SignalAll(int sig);

  // A copy of the children's state (thread-safe).
  std::vector<Child> children() const;
  // "worker-2 exited with status 1; its last stderr lines: ..." for each failed
  // child (a child WaitAll had to stop is not a failure).
  std::string DescribeFailures() const;
  bool AnyFailed() const;

 private:
  void Reap(bool block);
  // Up to `pause`: until a running child exits (polling their pidfds) on
  // the system clock when the kernel has pidfds; else a sleep on clock_.
  void PauseForExit(absl::Duration pause);
  size_t AddChild(const std::string& name, pid_t pid);
  void StartReader(size_t index, int fd);
  std::function<void(const std::string&)> on_line_;
  Clock* clock_;
  mutable std::mutex mu_;
  std::vector<Child> children_;
  std::vector<std::thread> readers_;
  std::vector<std::pair<size_t, int>> unread_;  // forked children's stderr, no reader yet
};

}  // namespace fedsim

#endif  // FEDSIM_TOOLS_SUBPROCESS_H_
