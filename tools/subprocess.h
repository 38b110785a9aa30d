// A set of child processes (ninja's subprocess.h habit): start children,
// collect their stderr, forward signals, reap them all, tell who failed.
//
// Thread safety: Start/Wait/Signal from one thread; the output readers run
// on threads of their own and are joined by Wait. WaitAll's timeouts and
// polling pauses are measured on the injected clock.
#ifndef FEDSIM_TOOLS_SUBPROCESS_H_
#define FEDSIM_TOOLS_SUBPROCESS_H_

#include <sys/types.h>

#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
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
  std::function<void(const std::string&)> on_line_;
  Clock* clock_;
  mutable std::mutex mu_;
  std::vector<Child> children_;
  std::vector<std::thread> readers_;
};

}  // namespace fedsim

#endif  // FEDSIM_TOOLS_SUBPROCESS_H_
