// fedsim run: the whole simulation on this machine — the server (engine +
// gRPC transport) in this process, W worker processes (on the CPU, forks of
// this process made after it loaded the data, calling over local links,
// rpc/local_link.h; on GPUs, new `fedsim client` processes on a Unix socket).
#include <fcntl.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <optional>
#include <span>
#include <string>
#include <thread>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/notification.h"
#include "client/worker.h"
#include "config/model_config.h"
#include "config/scenario_file.h"
#include "core/clock.h"
#include "runtime/gpu_batcher.h"
#include "server/grpc_transport.h"
#include "sim/runner.h"
#include "tools/commands.h"
#include "tools/common_flags.h"
#include "tools/flag_checks.h"
#include "tools/local_socket.h"
#include "tools/run_common.h"
#include "tools/security_flags.h"
#include "tools/subprocess.h"
#include "util/page_warmer.h"

ABSL_FLAG(int, workers, 0,
          "Worker processes to start (default 0 = one per visible GPU when --device finds GPUs, "
          "else one per CPU core). Ignored with --inprocess. Each process adds its own start and "
          "hand-offs every round: on many short tasks one worker with a slot per core "
          "(--workers=1) runs closest to --inprocess (docs/results.md, issue 14).");
ABSL_FLAG(bool, inprocess, false,
          "Run the same engine and algorithm with in-process training threads and no sockets.");
ABSL_FLAG(std::string, out, "",
          "Folder for run results (default: the scenario's output.dir, usually runs/); the run "
          "goes to <out>/<name>, or <name>-2, -3, ... when that exists.");
ABSL_FLAG(std::string, run_dir, "",
          "Write the run to exactly this folder (must not exist yet); overrides --out.");
ABSL_FLAG(bool, verbose, false,
          "Show the workers' log lines as they come, with a line per task they train.");
ABSL_FLAG(int, eval_threads, 0,
          "Threads for test-set evaluation (default 0 = one per CPU core); results do not "
          "depend on it.");
ABSL_FLAG(bool, fork_workers, true,
          "Start the CPU worker processes as copies of this one, after it has loaded the run's "
          "data, so they share that data instead of loading it again and start in "
          "milliseconds. false: start each as a new 'fedsim client' process, as on another "
          "machine. Runs on GPUs always start new processes.");
ABSL_FLAG(bool, worker_link, true,
          "Forked workers make their calls to the server over a socket pair made before the fork "
          "(one thread on each side, no gRPC), which costs far fewer thread wake-ups per call; "
          "models and updates go through shared memory either way; with every worker on a "
          "link the server starts no gRPC listener. false: over gRPC on the server's socket, as "
          "workers on other machines do. Results are the same bits.");
ABSL_FLAG(double, heartbeat_timeout, 5.0,
          "Seconds without a heartbeat after which a worker is presumed dead and its tasks are "
          "given to others.");

namespace fedsim {
namespace {

// Forked workers: per worker, the write end of the pipe it waits on for the
// server's address, and with links the server's end of its local link.
struct ForkedWorkers {
  std::vector<int> go;
  std::vector<int> links;  // empty without links
};

// What a forked worker reads of the data it shares with this process and
// finds unmapped: the training images when they are a file mapping (a
// fork copies the page tables of the process's own memory, not of file
// mappings). Empty without preloaded data or for data held in memory.
std::vector<std::span<const std::byte>> SharedPagesToWarm(const RunData* data) {
  if (data == nullptr || data->train == nullptr || data->train->is_float()) return {};
  return {std::as_bytes(data->train->stored_bytes())};
}

// Forks `workers` copies of this process (this process must have one
// thread: SubprocessSet::Fork). Each waits for the server's address on a
// pipe, then runs as `fedsim client` would with `base` (and its name and the
// address), over a local link (rpc/local_link.h) when `link` is set. Write
// the address to each pipe and close it once the server listens (and serves
// the links); closing one without writing lets its worker exit with status 1.
absl::StatusOr<ForkedWorkers> ForkWorkers(SubprocessSet* children, int workers,
                                          const WorkerOptions& base, bool link) {
  ForkedWorkers forked;
  auto close_all = [&forked] {
    for (int fd : forked.go) close(fd);
    for (int fd : forked.links) close(fd);
  };
  for (int w = 0; w < workers; ++w) {
    int fds[2];
    if (pipe2(fds, O_CLOEXEC) != 0) {
      close_all();
      return absl::InternalError(absl::StrCat("pipe: ", std::strerror(errno)));
    }
    int pair[2] = {-1, -1};
    if (link && socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, pair) != 0) {
      const int err = errno;
      close(fds[0]);
      close(fds[1]);
      close_all();
      return absl::InternalError(absl::StrCat("socketpair: ", std::strerror(err)));
    }
    const std::string name = absl::StrCat("worker-", w + 1);
    const int in = fds[0];
    const int mine = pair[1];
    std::vector<int> keep = {in};
    if (link) keep.push_back(mine);
    auto forked_one = children->Fork(
        name,
        [&base, &name, in, mine]() -> int {
          // Reads the shared training images while this worker waits for
          // the server and for slower peers (until it exits).
          PageWarmer warm(SharedPagesToWarm(base.preloaded_data));
          std::string address;
          char buf[512];
          for (ssize_t n; (n = read(in, buf, sizeof(buf))) != 0;) {
            if (n < 0 && errno == EINTR) continue;
            if (n < 0) break;
            address.append(buf, static_cast<size_t>(n));
          }
          close(in);
          if (address.empty()) return 1;  // the server never started; `fedsim run` says why
          WorkerOptions options = base;
          options.server = address;
          options.server_link_fd = mine;
          options.name = name;
          return RunWorkerAndReport(options);
        },
        keep);
    close(fds[0]);
    if (link) close(pair[1]);
    if (!forked_one.ok()) {
      close(fds[1]);
      if (link) close(pair[0]);
      close_all();
      return forked_one.status();
    }
    forked.go.push_back(fds[1]);
    if (link) forked.links.push_back(pair[0]);
  }
  return forked;
}

}  // namespace

int RunMain(int argc, char** argv) {
  const std::vector<std::string> overrides = ScenarioOverrides(argc, argv);
  std::vector<char*> args = absl::ParseCommandLine(argc, argv);
  const std::string resume = absl::GetFlag(FLAGS_resume);
  if (args.size() != (resume.empty() ? 2u : 1u) || (!resume.empty() && !overrides.empty())) {
    std::fprintf(stderr,
                 "usage: fedsim run SCENARIO.textproto [--workers=W] [--inprocess] "
                 "[--set=field=value ...]\n"
                 "       fedsim run --resume=RUN_DIR [--workers=W] [--inprocess]   (no scenario, "
                 "no --set: the run's own)\n(see 'fedsim run --help')\n");
    return 2;
  }
  ProblemList flag_problems;
  CheckFlagRange("workers", absl::GetFlag(FLAGS_workers), 0, kMaxProcesses,
                 "worker processes; 0 = one per CPU core", &flag_problems);
  CheckSlotsFlag(&flag_problems);
  CheckFlagRange("eval_threads", absl::GetFlag(FLAGS_eval_threads), 0, kMaxProcesses,
                 "0 = one per CPU core", &flag_problems);
  CheckFlagSeconds("heartbeat_timeout", absl::GetFlag(FLAGS_heartbeat_timeout),
                   "seconds without a heartbeat before a worker is presumed dead", &flag_problems);
  CheckCheckpointEveryFlag(&flag_problems);
  // --device=auto: the visible GPUs for worker processes, else the CPU.
  DeviceSpec auto_device;
  if (!absl::GetFlag(FLAGS_inprocess) && CudaDevicesVisible() > 0) {
    auto_device.kind = DeviceSpec::Kind::kCuda;
  }
  const DeviceSpec device = DeviceFromFlag(auto_device, &flag_problems);
  if (!flag_problems.empty()) return ReportFlagProblems("run", flag_problems);
  // With --resume there is no scenario argument (the usage check above).
  const std::string path = resume.empty() ? args[1] : "";
  absl::StatusOr<RunScenario> loaded = LoadScenarioToRun(path, overrides, resume);
  if (!loaded.ok()) {
    std::fprintf(stderr, "%s\n", std::string(loaded.status().message()).c_str());
    return 1;
  }
  const config::Scenario& scenario = loaded->scenario;
  const std::string& scenario_dir = loaded->scenario_dir;
  absl::StatusOr<std::unique_ptr<PreparedRun>> run;
  auto prepare = [&]() -> bool {
    run = PrepareRun(scenario, scenario_dir);
    if (!run.ok()) {
      std::fprintf(stderr, "fedsim run: %s\n", std::string(run.status().message()).c_str());
    }
    return run.ok();
  };
  InstallStopSignalHandlers();
  const int cores = std::max(1u, std::thread::hardware_concurrency());
  RunOptions options;
  options.out_dir = absl::GetFlag(FLAGS_out);
  options.run_dir = absl::GetFlag(FLAGS_run_dir);
  options.terminal = isatty(2);
  options.eval_threads =
      absl::GetFlag(FLAGS_eval_threads) > 0 ? absl::GetFlag(FLAGS_eval_threads) : cores;
  options.interrupt = &g_interrupted;
  options.resume_dir = resume;
  options.checkpoint_every_commits =
      static_cast<uint32_t>(std::max(0, absl::GetFlag(FLAGS_checkpoint_every)));

  absl::StatusOr<RunOutcome> outcome;
  std::string failures;
  if (absl::GetFlag(FLAGS_inprocess)) {
    if (!prepare()) return 1;
    // On a GPU without --slots: as many clients per batched launch as fit.
    const int slots = absl::GetFlag(FLAGS_slots) > 0 ? absl::GetFlag(FLAGS_slots)
                      : device.is_gpu_backend()
                          ? AutoGpuSlots(*(*run)->data, scenario.local().batch_size(), device)
                          : cores;
    options.device = device;
    std::fprintf(stderr, "fedsim run: %s, in-process with %d training threads on %s\n",
                 scenario.name().c_str(), slots, device.ToString().c_str());
    outcome = RunInProcess(**run, slots, options);
  } else {
    // On GPUs (--device=auto finding some, or given), worker w trains on GPU
    // w mod count with its slots sized to the GPU's memory.
    const int gpus = device.kind == DeviceSpec::Kind::kCuda ? CudaDevicesVisible() : 0;
    const bool on_gpus = device.is_gpu_backend();
    const int workers = absl::GetFlag(FLAGS_workers) > 0 ? absl::GetFlag(FLAGS_workers)
                        : gpus > 0                       ? gpus
                                                         : cores;
    const int slots = absl::GetFlag(FLAGS_slots) > 0 ? absl::GetFlag(FLAGS_slots)
                      : on_gpus                      ? 0
                                                     : std::max(1, cores / workers);
    // The workers dial a Unix socket in a private directory (removed when
    // this scope ends); TCP on loopback when no directory can be made.
    absl::StatusOr<LocalSocketDir> socket_dir = LocalSocketDir::Create();
    if (!socket_dir.ok()) {
      std::fprintf(stderr, "fedsim run: %s; the workers connect over TCP on loopback instead\n",
                   std::string(socket_dir.status().message()).c_str());
    }
    ModelStore store;
    GrpcServerOptions so;
    so.listen_address = socket_dir.ok() ? socket_dir->address() : "127.0.0.1:0";
    so.heartbeat_timeout_s = absl::GetFlag(FLAGS_heartbeat_timeout);
    so.accept_mismatched_workers = absl::GetFlag(FLAGS_accept_worker_mismatch);
    so.shared_memory_updates = absl::GetFlag(FLAGS_shared_memory);
    so.log = stderr;
    so.interrupt = &g_interrupted;
    if (!UseFreshRunToken(&so).ok()) return 1;  // workers inherit it in $FEDSIM_TOKEN
    SetNumericIdentity(scenario, &so);
    absl::StatusOr<size_t> num_params = ModelParamsForScenario(scenario);
    if (!num_params.ok()) {
      std::fprintf(stderr, "fedsim run: %s\n", std::string(num_params.status().message()).c_str());
      return 1;
    }
    auto prepare_checked = [&]() -> bool {
      if (!prepare()) return false;
      if ((*run)->num_params == *num_params) return true;
      std::fprintf(stderr,
                   "fedsim run: internal error: the model has %zu parameters, the schema said "
                   "%zu\n",
                   (*run)->num_params, *num_params);
      return false;
    };
    const std::string scenario_text = ScenarioToText(scenario);
    const bool verbose = absl::GetFlag(FLAGS_verbose);
    SubprocessSet children([verbose](const std::string& line) {
      if (verbose) std::fprintf(stderr, "%s\n", line.c_str());
    });
    // CPU workers are forks of this process made after it loaded the data:
    // they share it (copy-on-write) and skip a program start and a data
    // load each. They wait on a pipe for the server's address, because the
    // server's threads must start after the forks.
    bool prepared = false;
    std::optional<ForkedWorkers> forked;
    if (absl::GetFlag(FLAGS_fork_workers) && !on_gpus) {
      if (!prepare_checked()) return 1;
      prepared = true;
      WorkerOptions base;
      base.slots = slots;
      base.scenario_dir = scenario_dir;
      // Only decentralized rules exchange models between workers; the
      // others need no peer service (its threads would only compete for the
      // cores).
      if (!scenario.algorithm().has_decentralized()) base.peer_listen = "";
      base.log = stdout;
      if (verbose) base.task_log = stderr;
      base.security.token = so.token;
      base.preloaded_data = (*run)->data.get();
      base.preloaded_scenario_text = scenario_text;
      base.preloaded_scenario = &scenario;
      absl::StatusOr<ForkedWorkers> go =
          ForkWorkers(&children, workers, base, absl::GetFlag(FLAGS_worker_link));
      if (go.ok()) {
        forked = *std::move(go);
        children.StartPendingReaders();
      } else if (children.children().empty()) {
        std::fprintf(stderr, "fedsim run: %s; starting the workers as new processes instead\n",
                     std::string(go.status().message()).c_str());
      } else {
        std::fprintf(stderr, "fedsim run: %s\n", std::string(go.status().message()).c_str());
        children.WaitAll(5.0);  // the forked ones read no address and exit
        return 1;
      }
    }
    // Workers that all call over local links need no gRPC listener: nobody
    // else could use it (its socket is private and its token this run's
    // own), and starting gRPC's server took 12-14 ms of this process's
    // start on the pfl recipe.
    const bool links_only = forked.has_value() && !forked->links.empty();
    if (links_only) so.listen_address = "";
    auto transport = StartGrpcTransport(so, scenario_text, *num_params, &store);
    if (!transport.ok()) {
      std::fprintf(stderr, "fedsim run: cannot start the server: %s\n",
                   std::string(transport.status().message()).c_str());
      if (forked) {  // no address: they exit
        SubprocessSet::WriteToEachAndClose(forked->go, "");
        for (int fd : forked->links) close(fd);
      }
      children.WaitAll(5.0);
      return 1;
    }
    // What forked workers on links name the server by, in their messages.
    const std::string address =
        links_only ? absl::StrCat("process ", getpid(), " (fedsim run)") : (*transport)->address();
    std::fprintf(stderr, "fedsim run: %s, %s%d worker processes%s x %s slots%s\n",
                 scenario.name().c_str(),
                 links_only ? "" : absl::StrCat("server on ", address, ", ").c_str(), workers,
                 !forked                 ? ""
                 : forked->links.empty() ? " (forked, sharing the loaded data)"
                                         : " (forked, sharing the loaded data, on local links)",
                 slots > 0 ? absl::StrCat(slots).c_str() : "auto",
                 on_gpus ? absl::StrCat(" on ", device.kind == DeviceSpec::Kind::kCuda
                                                    ? absl::StrCat(gpus, " GPU(s)")
                                                    : device.ToString())
                               .c_str()
                         : "");
    if (forked) {
      for (size_t w = 0; w < forked->links.size(); ++w) {
        (*transport)->ServeLink(forked->links[w], absl::StrCat("worker-", w + 1));
      }
      // A worker that died meanwhile is skipped; the watcher notices it.
      SubprocessSet::WriteToEachAndClose(forked->go, address);
    } else {
      // New processes: the server listens and they start before this
      // process loads the data, so their data loading overlaps with ours.
      char self[4096];
      ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
      if (n <= 0) {
        std::fprintf(stderr, "fedsim run: cannot find the fedsim executable\n");
        return 1;
      }
      self[n] = '\0';
      for (int w = 0; w < workers; ++w) {
        std::string name = absl::StrCat("worker-", w + 1);
        std::vector<std::string> argv = {self, "client", absl::StrCat("--server=", address),
                                         absl::StrCat("--slots=", slots),
                                         absl::StrCat("--name=", name)};
        if (on_gpus) {
          DeviceSpec mine = device;
          if (mine.kind == DeviceSpec::Kind::kCuda && absl::GetFlag(FLAGS_device) == "auto") {
            mine.index = w % std::max(gpus, 1);
          }
          argv.push_back(absl::StrCat("--device=", mine.ToString()));
        } else {
          argv.push_back("--device=cpu");
        }
        if (!scenario.algorithm().has_decentralized()) argv.push_back("--peer_listen=");
        if (verbose) argv.push_back("--log_tasks");
        auto started = children.Start(name, argv);
        if (!started.ok()) {
          std::fprintf(stderr, "fedsim run: %s\n", std::string(started.status().message()).c_str());
          children.SignalAll(SIGTERM);
          return 1;
        }
      }
    }
    if (!prepared && !prepare_checked()) {
      (*transport)->Shutdown();
      children.SignalAll(SIGTERM);  // the run cannot start: no need to wait for them
      children.WaitAll(5.0);
      return 1;
    }
    (*transport)->SetClientExamples(ClientExamples(**run));  // the server's own n_i
    // Watches the children: forwards Ctrl-C / SIGTERM, stops the run when no
    // worker is left (their tasks could never finish).
    // `done` wakes the watcher as soon as the run ends: the workers hear of
    // the end only at the transport's Shutdown, after the join below.
    absl::Notification done;
    std::atomic<bool> all_gone{false};
    std::thread watcher([&] {
      bool forwarded = false;
      absl::Time interrupted_at = absl::InfiniteFuture();
      while (!done.HasBeenNotified()) {
        // The run stops within moments of an interrupt and tells the workers
        // to exit; they are signalled only if the run has not ended after a
        // grace, because its checkpoint at the stop may need them (a
        // decentralized run's client models live on the workers).
        if (g_interrupted.load() && interrupted_at == absl::InfiniteFuture()) {
          interrupted_at = absl::Now();
        }
        if (!forwarded && absl::Now() - interrupted_at > absl::Seconds(10)) {
          children.SignalAll(g_signal.load() ? g_signal.load() : SIGTERM);
          forwarded = true;
        }
        // Workers told to exit before the run's last evaluation
        // (Transport::ReleaseWorkers) are expected to be gone.
        if (children.Poll() == 0 && !done.HasBeenNotified() &&
            !(*transport)->stats().workers_released) {
          // After Ctrl-C (which a terminal sends to the workers too) their
          // exit is expected: the run stops as interrupted, not failed.
          if (g_signal.load() == 0) all_gone.store(true);
          g_interrupted.store(true);
          return;
        }
        done.WaitForNotificationWithTimeout(absl::Milliseconds(50));
      }
    });
    options.transport_name = absl::StrCat("grpc, ", workers, " workers x ",
                                          slots > 0 ? absl::StrCat(slots) : "auto", " slots");
    outcome = ExecuteRun(**run, transport->get(), &store, options);
    done.Notify();
    watcher.join();
    (*transport)->Shutdown();
    children.WaitAll(20.0);
    for (const auto& c : children.children()) {
      if (c.killed_by_wait) {
        std::fprintf(stderr,
                     "fedsim run: %s did not exit within 20 s of the run's end; stopped it\n",
                     c.name.c_str());
      }
    }
    if (all_gone.load() && outcome.ok()) {
      outcome = absl::UnavailableError("every worker process exited before the run ended");
    }
    failures = children.DescribeFailures();
  }
  if (!outcome.ok()) {
    std::fprintf(stderr, "\nfedsim run: %s\n", std::string(outcome.status().message()).c_str());
    if (!failures.empty()) std::fprintf(stderr, "%s", failures.c_str());
    return 1;
  }
  PrintSummary(*outcome);
  if (g_interrupted.load() && outcome->summary.stop_reason == "interrupted") {
    std::fprintf(stderr, "fedsim run: interrupted; partial results kept in %s\n",
                 outcome->run_dir.c_str());
    return 130;
  }
  if (!failures.empty()) {
    std::fprintf(stderr,
                 "fedsim run: the run completed (the remaining workers took over the tasks), but "
                 "worker processes failed:\n%s",
                 failures.c_str());
    return 3;
  }
  return 0;
}

}  // namespace fedsim
