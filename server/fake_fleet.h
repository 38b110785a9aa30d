// FakeFleet: many light fake workers against one GrpcTransport in this
// process, to show the server holds them with bounded threads and memory
// and loses no task (issue 15). Used by server/fake_fleet_test.cc (200
// workers, in ctest) and bench/many_workers_bench.cc (1,000 and more).
//
// Each fake worker has its own channel and its own TCP connection to the
// server (a local subchannel pool per channel), registers, and long-polls
// GetTask through gRPC's callback client API (no client thread per worker).
// Once every worker's poll is parked on the server, the "engine" submits
// the tasks in one burst and awaits every result; a worker that gets a task
// pushes a small result (PushUpdate, from a few pusher threads) and polls
// again. The server runs on a FakeClock that never moves: no poll times
// out, no worker is dropped, so every lease is a reaction to a task.
//
// Thread safety: RunFakeFleet may be called from any thread, one at a time
// per process (it reads the process's thread count and memory).
#ifndef FEDSIM_SERVER_FAKE_FLEET_H_
#define FEDSIM_SERVER_FAKE_FLEET_H_

#include <cstdint>
#include <vector>

#include "absl/status/statusor.h"
#include "server/grpc_transport.h"

namespace fedsim {

struct FakeFleetOptions {
  // Fake workers, each with its own connection. Default: 200.
  int workers = 200;
  // Tasks submitted = workers * tasks_per_worker. Default: 3.
  int tasks_per_worker = 3;
  // Floats per result. Default: 16.
  uint64_t num_params = 16;
  // Threads that push results (sync PushUpdate). Default: 4.
  int pusher_threads = 4;
  // How long every worker may take to park its first long poll before the
  // run gives up with DeadlineExceeded. Default: 60.
  int park_timeout_s = 60;
};

struct FakeFleetReport {
  int workers = 0;
  uint64_t tasks = 0;
  // From the first Submit to the last result awaited, in real seconds.
  double wall_s = 0;
  // Threads of this process (/proc/self/task): before the server started,
  // when every worker's long poll was parked on it, and the most seen
  // (sampled every 10 ms) until the last worker heard run_finished.
  int threads_before = 0;
  int threads_parked = 0;
  int threads_peak = 0;
  // Open sockets of this process when every poll was parked: two per worker
  // connection (the worker's end and the server's), and the listener.
  int sockets_parked = 0;
  // Resident memory (VmRSS, MiB) before the server started and when every
  // poll was parked; VmHWM at the end.
  double rss_before_mib = 0;
  double rss_parked_mib = 0;
  double rss_peak_mib = 0;
  // How many times each task (index = id - 1) reached a worker.
  std::vector<int> times_leased;
  // Long polls parked at once (stats().polls_parked) before the burst.
  uint64_t polls_parked = 0;
  // The server's counters at the end.
  GrpcTransportStats stats;
};

// Runs the fleet. Errors: the first failure of a worker's call, or
// DeadlineExceeded when the polls are not all parked within 60 s.
absl::StatusOr<FakeFleetReport> RunFakeFleet(const FakeFleetOptions& options);

// Raises this process's open-file limit to its hard limit (a connection is
// two descriptors in a process that is both server and workers). Returns
// the new soft limit.
uint64_t RaiseOpenFileLimit();

}  // namespace fedsim

#endif  // FEDSIM_SERVER_FAKE_FLEET_H_
