// P5 (BENCHMARKS.md): the virtual-time engine's own overhead.
//
// Drives the real Engine with a no-op transport (every task's result is a
// zero delta of a tiny model, available at once) and a trivial evaluator
// (never called: no evaluation cadence), with an asynchronous rule from the
// registry (FedBuff by default) over N virtual clients with lognormal task
// durations. Reports task completions processed per wall second.
//
//   engine_bench                       # N = 1000 and N = 100000, 1e6 events, 5 reps
//   engine_bench --clients=1000 --events=1000000 --reps=5 --concurrency=100
//   engine_bench --rule=fedasync
//   /usr/bin/time -v engine_bench --memory   # one run, N = 100000 (or
//                                            # --clients); read "Maximum
//                                            # resident set size"
//   engine_bench --clients=1000000 --rule=fedasync   # issue 15's fleet size
//
// A plain main (no Google Benchmark): one engine run is the unit of work.
#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "algorithms/registry.h"
#include "proto/scenario.pb.h"
#include "sim/devices.h"
#include "sim/engine.h"
#include "sim/run_observer.h"
#include "core/transport.h"

namespace fedsim {
namespace {

constexpr size_t kNumParams = 10;

// Results are "computed" at submission: a zero delta of kNumParams floats.
class NoOpTransport : public Transport {
 public:
  void Submit(const TaskSpec& task) override {
    pending_.emplace(task.id, std::make_pair(task.client, task.base));
  }
  absl::StatusOr<TaskResult> Await(TaskId id) override {
    auto it = pending_.find(id);
    if (it == pending_.end()) return absl::NotFoundError("task was not submitted");
    TaskResult r;
    r.id = id;
    r.client = it->second.first;
    r.base = it->second.second;
    r.num_examples = 1;
    r.delta.assign(kNumParams, 0.0f);
    pending_.erase(it);
    return r;
  }
  absl::StatusOr<std::optional<TaskResult>> AwaitAny(absl::Time) override {
    return absl::UnimplementedError("virtual clock only");
  }
  void Cancel(TaskId id) override { pending_.erase(id); }
  void Shutdown() override {}

 private:
  std::unordered_map<TaskId, std::pair<ClientId, ModelRef>> pending_;
};

class NullEvaluator : public EvaluatorInterface {
 public:
  MetricValues Evaluate(std::span<const float>) override {
    return {{"test_loss", 0.0}, {"test_accuracy", 0.0}};
  }
};

struct Options {
  std::vector<uint32_t> clients = {1000, 100000};
  uint64_t events = 1000000;
  int reps = 5;
  uint32_t concurrency = 100;
  std::string rule = "fedbuff";
  bool memory = false;
};

struct RunResult {
  uint64_t events = 0;
  double wall_s = 0;
};

absl::StatusOr<RunResult> RunOnce(const Options& opt, uint32_t num_clients, uint64_t seed) {
  config::Algorithm alg_config;
  uint64_t events_per_commit = 1;
  if (opt.rule == "fedbuff") {
    alg_config.mutable_fedbuff()->set_buffer_size(10);
    alg_config.mutable_fedbuff()->set_concurrency(opt.concurrency);
    alg_config.mutable_fedbuff()->set_flush_at_end(false);
    events_per_commit = 10;
  } else if (opt.rule == "fedasync") {
    alg_config.mutable_fedasync()->set_concurrency(opt.concurrency);
  } else {
    return absl::InvalidArgumentError("--rule must be fedbuff or fedasync");
  }
  AlgorithmContext context{num_clients, kNumParams, seed};
  absl::StatusOr<std::unique_ptr<Algorithm>> algorithm = NewAlgorithm(alg_config, context);
  if (!algorithm.ok()) return algorithm.status();

  // Lognormal per-client speed (median 1 s per task), like the scenarios.
  config::Distribution speed;
  speed.mutable_lognormal()->set_mu(0.0);
  speed.mutable_lognormal()->set_sigma(1.0);

  EngineConfig config;
  config.seed = seed;
  config.clients.resize(num_clients);
  config.profiles.resize(num_clients);
  config.examples_per_task.assign(num_clients, 1);
  for (uint32_t i = 0; i < num_clients; ++i) {
    config.clients[i].num_examples = 1;
    config.clients[i].importance = 1.0 / num_clients;
    config.profiles[i].seconds_per_example = DrawFromDistribution(
        speed, seed, "device.seconds_per_example", i, num_clients, 1.0);
  }
  config.jitter_sigma = 0.1;
  config.initial_params.assign(kNumParams, 0.0f);
  config.max_commits = opt.events / events_per_commit;
  config.eval_every_commits = 0;
  config.eval_every_virtual_s = 0;

  NoOpTransport transport;
  ModelStore store;
  NullEvaluator evaluator;
  RunObserver observer;
  Engine engine(std::move(config), algorithm->get(), &transport, &store, &evaluator, &observer);
  const auto start = std::chrono::steady_clock::now();
  absl::StatusOr<RunSummary> summary = engine.Run();
  const auto stop = std::chrono::steady_clock::now();
  if (!summary.ok()) return summary.status();
  RunResult r;
  r.events = summary->updates_applied + summary->updates_dropped;
  r.wall_s = std::chrono::duration<double>(stop - start).count();
  return r;
}

bool ParseFlag(std::string_view arg, std::string_view name, std::string_view* value) {
  if (!arg.starts_with(name) || arg.size() <= name.size() || arg[name.size()] != '=') {
    return false;
  }
  *value = arg.substr(name.size() + 1);
  return true;
}

int Main(int argc, char** argv) {
  Options opt;
  bool clients_given = false;
  for (int i = 1; i < argc; ++i) {
    std::string_view arg = argv[i];
    std::string_view v;
    if (ParseFlag(arg, "--clients", &v)) {
      opt.clients = {static_cast<uint32_t>(std::strtoul(std::string(v).c_str(), nullptr, 10))};
      clients_given = true;
    } else if (ParseFlag(arg, "--events", &v)) {
      opt.events = static_cast<uint64_t>(std::strtod(std::string(v).c_str(), nullptr));
    } else if (ParseFlag(arg, "--reps", &v)) {
      opt.reps = std::atoi(std::string(v).c_str());
    } else if (ParseFlag(arg, "--concurrency", &v)) {
      opt.concurrency = static_cast<uint32_t>(std::strtoul(std::string(v).c_str(), nullptr, 10));
    } else if (ParseFlag(arg, "--rule", &v)) {
      opt.rule = std::string(v);
    } else if (arg == "--memory") {
      opt.memory = true;
    } else {
      std::fprintf(stderr,
                   "usage: engine_bench [--clients=N] [--events=E] [--reps=R] "
                   "[--concurrency=C] [--rule=fedbuff|fedasync] [--memory]\n");
      return 2;
    }
  }
  if (opt.memory) {
    // One run (over 100,000 virtual clients unless --clients says) for the
    // peak-RSS measurement.
    if (!clients_given) opt.clients = {100000};
    opt.reps = 1;
  }
  std::printf("rule=%s concurrency=%u events/run=%llu reps=%d\n", opt.rule.c_str(),
              opt.concurrency, static_cast<unsigned long long>(opt.events), opt.reps);
  for (uint32_t n : opt.clients) {
    std::vector<double> rates;
    for (int rep = 0; rep < opt.reps; ++rep) {
      absl::StatusOr<RunResult> r = RunOnce(opt, n, /*seed=*/1 + rep);
      if (!r.ok()) {
        std::fprintf(stderr, "engine_bench: N=%u: %s\n", n, r.status().ToString().c_str());
        return 1;
      }
      rates.push_back(static_cast<double>(r->events) / r->wall_s);
      std::printf("  N=%u rep %d: %llu events in %.3f s = %.0f events/s\n", n, rep,
                  static_cast<unsigned long long>(r->events), r->wall_s, rates.back());
    }
    std::sort(rates.begin(), rates.end());
    const size_t m = rates.size();
    const double median = m % 2 ? rates[m / 2] : 0.5 * (rates[m / 2 - 1] + rates[m / 2]);
    std::printf("N=%u: median %.0f events/s (min %.0f, max %.0f) over %zu runs\n", n, median,
                rates.front(), rates.back(), m);
  }
  return 0;
}

}  // namespace
}  // namespace fedsim

int main(int argc, char** argv) { return fedsim::Main(argc, argv); }
