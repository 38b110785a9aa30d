#include "tools/subprocess.h"

#include <dirent.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "absl/strings/str_cat.h"

extern char** environ;

namespace fedsim {

SubprocessSet::~SubprocessSet() {
  WaitAll(0);  // starts any pending reader, reaps every child, joins the readers
}

absl::StatusOr<size_t> SubprocessSet::Start(const std::string& name,
                                            const std::vector<std::string>& argv,
                                            const std::string& stdout_path) {
  int fds[2];
  if (pipe2(fds, O_CLOEXEC) != 0) {
    return absl::InternalError(absl::StrCat("pipe: ", std::strerror(errno)));
  }
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, fds[1], 2);
  if (!stdout_path.empty()) {
    posix_spawn_file_actions_addopen(&actions, 1, stdout_path.c_str(),
                                     O_WRONLY | O_CREAT | O_APPEND, 0644);
  }
  std::vector<char*> args;
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  pid_t pid;
  int rc = posix_spawn(&pid, argv[0].c_str(), &actions, nullptr, args.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  close(fds[1]);
  if (rc != 0) {
    close(fds[0]);
    return absl::InternalError(absl::StrCat("cannot start ", argv[0], ": ", std::strerror(rc)));
  }
  const size_t index = AddChild(name, pid);
  StartReader(index, fds[0]);
  return index;
}

size_t SubprocessSet::AddChild(const std::string& name, pid_t pid) {
  std::lock_guard<std::mutex> lock(mu_);
  Child c;
  c.name = name;
  c.pid = pid;
  children_.push_back(std::move(c));
  return children_.size() - 1;
}

void SubprocessSet::StartReader(size_t index, int fd) {
  readers_.emplace_back([this, index, fd] {
    std::string buf;
    char chunk[4096];
    auto emit = [&](std::string line) {
      std::string prefixed;
      {
        std::lock_guard<std::mutex> lock(mu_);
        Child& c = children_[index];
        prefixed = absl::StrCat("[", c.name, "] ", line);
        c.stderr_tail.push_back(line);
        if (c.stderr_tail.size() > 40) c.stderr_tail.pop_front();
      }
      if (on_line_) on_line_(prefixed);
    };
    while (true) {
      ssize_t n = read(fd, chunk, sizeof(chunk));
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) break;
      buf.append(chunk, n);
      size_t pos;
      while ((pos = buf.find('\n')) != std::string::npos) {
        emit(buf.substr(0, pos));
        buf.erase(0, pos + 1);
      }
    }
    if (!buf.empty()) emit(buf);
    close(fd);
  });
}

int SubprocessSet::ThreadCount() {
  DIR* dir = opendir("/proc/self/task");
  if (dir == nullptr) return 0;
  int n = 0;
  while (const dirent* e = readdir(dir)) n += e->d_name[0] != '.' ? 1 : 0;
  closedir(dir);
  return n;
}

absl::StatusOr<size_t> SubprocessSet::Fork(const std::string& name,
                                           const std::function<int()>& body,
                                           const std::vector<int>& keep_fds) {
  const int threads = ThreadCount();
  if (threads != 1) {
    return absl::FailedPreconditionError(absl::StrCat("cannot fork ", name, ": this process has ",
                                                      threads,
                                                      " threads (a fork needs exactly one)"));
  }
  int fds[2];
  if (pipe2(fds, O_CLOEXEC) != 0) {
    return absl::InternalError(absl::StrCat("pipe: ", std::strerror(errno)));
  }
  std::fflush(nullptr);  // or the child would write this process's buffered output again
  const pid_t parent = getpid();
  const pid_t pid = fork();
  if (pid < 0) {
    const int err = errno;
    close(fds[0]);
    close(fds[1]);
    return absl::InternalError(absl::StrCat("cannot fork ", name, ": ", std::strerror(err)));
  }
  if (pid == 0) {
    // The child. The parent had one thread, so no lock is held here and
    // any call is safe.
    dup2(fds[1], 2);
    for (int sig : {SIGINT, SIGTERM, SIGPIPE}) signal(sig, SIG_DFL);
    prctl(PR_SET_PDEATHSIG, SIGTERM);
    if (getppid() != parent) _exit(1);  // the parent died before the line above
    DIR* dir = opendir("/proc/self/fd");
    if (dir != nullptr) {
      const int listing = dirfd(dir);
      std::vector<int> close_fds;
      while (const dirent* e = readdir(dir)) {
        const int fd = std::atoi(e->d_name);
        if (e->d_name[0] == '.' || fd <= 2 || fd == listing) continue;
        if (std::find(keep_fds.begin(), keep_fds.end(), fd) == keep_fds.end()) {
          close_fds.push_back(fd);
        }
      }
      closedir(dir);
      for (int fd : close_fds) close(fd);
    }
    const int rc = body();
    std::fflush(nullptr);
    _exit(rc);
  }
  close(fds[1]);
  const size_t index = AddChild(name, pid);
  unread_.emplace_back(index, fds[0]);
  return index;
}

void SubprocessSet::WriteToEachAndClose(const std::vector<int>& fds, const std::string& bytes) {
  sigset_t pipe_signal, old;
  sigemptyset(&pipe_signal);
  sigaddset(&pipe_signal, SIGPIPE);
  pthread_sigmask(SIG_BLOCK, &pipe_signal, &old);
  bool broken = false;
  for (int fd : fds) {
    for (size_t done = 0; done < bytes.size();) {
      const ssize_t n = write(fd, bytes.data() + done, bytes.size() - done);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) {
        broken = true;  // EPIPE: the reader is gone
        break;
      }
      done += static_cast<size_t>(n);
    }
    close(fd);
  }
  if (broken) {
    // The SIGPIPE a write raised is pending on this thread: take it.
    const timespec now{0, 0};
    while (sigtimedwait(&pipe_signal, nullptr, &now) > 0) {
    }
  }
  pthread_sigmask(SIG_SETMASK, &old, nullptr);
}

void SubprocessSet::StartPendingReaders() {
  for (const auto& [index, fd] : unread_) StartReader(index, fd);
  unread_.clear();
}

void SubprocessSet::Reap(bool block) {
  std::lock_guard<std::mutex> lock(mu_);
  for (Child& c : children_) {
    if (c.exited) continue;
    int status = 0;
    pid_t r = waitpid(c.pid, &status, block ? 0 : WNOHANG);
    if (r == c.pid) {
      c.exited = true;
      c.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
    }
  }
}

size_t SubprocessSet::Poll() {
  Reap(false);
  std::lock_guard<std::mutex> lock(mu_);
  size_t running = 0;
  for (const Child& c : children_) running += c.exited ? 0 : 1;
  return running;
}

void SubprocessSet::WaitAll(double timeout_s) {
  StartPendingReaders();
  // waitpid cannot wait with a timeout: poll, pausing until a child exits
  // (PauseForExit). Where that can only sleep: workers told that a run is
  // over exit within milliseconds, so the pauses start at 1 ms and double
  // up to kPollPause (a fixed 20 ms made every run's end wait 10 ms on
  // average for nothing).
  constexpr absl::Duration kPollPause = absl::Milliseconds(20);
  const absl::Time end = clock_->Now() + absl::Seconds(timeout_s);
  absl::Duration pause = absl::Milliseconds(1);
  while (Poll() > 0 && clock_->Now() < end) {
    PauseForExit(std::min(pause, end - clock_->Now()));
    pause = std::min(2 * pause, kPollPause);
  }
  if (Poll() > 0) {
    {
      std::lock_guard<std::mutex> lock(mu_);
      for (Child& c : children_) c.killed_by_wait = !c.exited;
    }
    SignalAll(SIGTERM);
    const absl::Time grace = clock_->Now() + absl::Seconds(3);
    while (Poll() > 0 && clock_->Now() < grace) PauseForExit(kPollPause);
    SignalAll(SIGKILL);
    Reap(true);
  }
  for (auto& t : readers_) {
    if (t.joinable()) t.join();
  }
}

void SubprocessSet::PauseForExit(absl::Duration pause) {
  std::vector<pollfd> fds;
  if (clock_ == SystemClock()) {
    std::lock_guard<std::mutex> lock(mu_);
    for (const Child& c : children_) {
      if (c.exited) continue;  // not reaped yet otherwise: its pid is still its own
      const int fd = static_cast<int>(syscall(SYS_pidfd_open, c.pid, 0));
      if (fd < 0) {  // a kernel before 5.3
        for (const pollfd& p : fds) close(p.fd);
        fds.clear();
        break;
      }
      fds.push_back({fd, POLLIN, 0});
    }
  }
  if (fds.empty()) {
    clock_->SleepFor(pause);
    return;
  }
  const int64_t ms =
      std::max<int64_t>(1, absl::ToInt64Milliseconds(absl::Ceil(pause, absl::Milliseconds(1))));
  while (poll(fds.data(), fds.size(), static_cast<int>(ms)) < 0 && errno == EINTR) {
  }
  for (const pollfd& p : fds) close(p.fd);
}

void SubprocessSet::SignalAll(int sig) {
  std::lock_guard<std::mutex> lock(mu_);
  for (const Child& c : children_) {
    if (!c.exited) kill(c.pid, sig);
  }
}

std::vector<SubprocessSet::Child> SubprocessSet::children() const {
  std::lock_guard<std::mutex> lock(mu_);
  return children_;
}

bool SubprocessSet::AnyFailed() const {
  std::lock_guard<std::mutex> lock(mu_);
  for (const Child& c : children_) {
    if (c.exited && c.exit_code != 0 && !c.killed_by_wait) return true;
  }
  return false;
}

std::string SubprocessSet::DescribeFailures() const {
  std::lock_guard<std::mutex> lock(mu_);
  std::string out;
  for (const Child& c : children_) {
    if (!c.exited || c.exit_code == 0 || c.killed_by_wait) continue;
    absl::StrAppend(&out, c.name, " (pid ", c.pid, ") ",
                    c.exit_code > 128 ? absl::StrCat("was killed by signal ", c.exit_code - 128)
                                      : absl::StrCat("exited with status ", c.exit_code));
    if (!c.stderr_tail.empty()) {
      absl::StrAppend(&out, "; its last stderr lines:\n");
      for (const auto& l : c.stderr_tail) absl::StrAppend(&out, "    ", l, "\n");
    } else {
      absl::StrAppend(&out, " (no stderr output)\n");
    }
  }
  return out;
}

}  // namespace fedsim
