// Issue 15, "many workers": one GrpcTransport with N light fake workers in
// this process (server/fake_fleet.h), each on its own TCP connection, all
// long-polling GetTask at once; then a burst of N * tasks_per_worker tasks.
// Prints workers, tasks, wall time of the burst, the process's threads
// (before, with every poll parked, peak), sockets, resident memory, and
// whether every task reached exactly one worker and was received once.
// Exits 1 when a task was lost or leased twice.
//
//   many_workers_bench [--workers=1000] [--tasks_per_worker=3]
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

#include "server/fake_fleet.h"

namespace fedsim {
namespace {

int Main(int argc, char** argv) {
  FakeFleetOptions options;
  options.workers = 1000;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg.rfind("--workers=", 0) == 0) {
      options.workers = std::atoi(arg.c_str() + std::strlen("--workers="));
    } else if (arg.rfind("--tasks_per_worker=", 0) == 0) {
      options.tasks_per_worker = std::atoi(arg.c_str() + std::strlen("--tasks_per_worker="));
    } else {
      std::fprintf(stderr, "usage: many_workers_bench [--workers=N] [--tasks_per_worker=K]\n");
      return 2;
    }
  }
  if (options.workers < 1 || options.tasks_per_worker < 1) {
    std::fprintf(stderr, "--workers and --tasks_per_worker must be at least 1\n");
    return 2;
  }
  const uint64_t files = RaiseOpenFileLimit();
  absl::StatusOr<FakeFleetReport> report = RunFakeFleet(options);
  if (!report.ok()) {
    std::fprintf(stderr, "many_workers_bench: %s (open-file limit %llu)\n",
                 report.status().ToString().c_str(), static_cast<unsigned long long>(files));
    return 1;
  }
  int once = 0;
  for (int n : report->times_leased) once += n == 1 ? 1 : 0;
  const bool none_lost = once == static_cast<int>(report->tasks) &&
                         report->stats.updates_accepted == report->tasks &&
                         report->stats.duplicates == 0 && report->stats.tasks_requeued == 0;
  std::printf("workers            %d (each its own connection; %d sockets open)\n", report->workers,
              report->sockets_parked);
  std::printf("polls parked       %llu at once\n",
              static_cast<unsigned long long>(report->polls_parked));
  std::printf(
      "tasks              %llu, leased exactly once: %d, results accepted: %llu, "
      "duplicates: %llu, requeued: %llu\n",
      static_cast<unsigned long long>(report->tasks), once,
      static_cast<unsigned long long>(report->stats.updates_accepted),
      static_cast<unsigned long long>(report->stats.duplicates),
      static_cast<unsigned long long>(report->stats.tasks_requeued));
  std::printf("wall               %.3f s (burst: submit to last result), %.0f tasks/s\n",
              report->wall_s, report->tasks / report->wall_s);
  std::printf("threads            %d before, %d with all polls parked, %d peak\n",
              report->threads_before, report->threads_parked, report->threads_peak);
  std::printf("memory (RSS)       %.1f MiB before, %.1f MiB parked, %.1f MiB peak (VmHWM)\n",
              report->rss_before_mib, report->rss_parked_mib, report->rss_peak_mib);
  std::printf("%s\n", none_lost ? "OK: no task lost" : "FAILED: a task was lost or repeated");
  return none_lost ? 0 : 1;
}

}  // namespace
}  // namespace fedsim

int main(int argc, char** argv) { return fedsim::Main(argc, argv); }
