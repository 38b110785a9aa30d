// P3 for decentralized learning (BENCHMARKS.md, issue 9): one gossip step
// z_i = sum_l W_il y_l (algorithms/gossip.h) for 100 clients on a random
// 10-regular graph with Metropolis-Hastings weights (11 models per row),
// against a memory-bandwidth triad a[i] = b[i] + s * c[i] on the same machine
// and threads. Target: gossip >= 0.7x triad.
//
// Model sizes: the MLP 784-200-200-10 (199,210 parameters) and McMahan's CNN
// (1,663,370). Figures, in GB/s (1e9 bytes), wall time (the step runs its
// own threads):
//  - gossip read_GBps: model bytes read, as the issue asks: every row reads
//    its 11 models, 100 x 11 x P x 4 bytes per step, although the blocked
//    kernel fetches each model from memory about once.
//  - gossip unique_GBps: the bytes a step must move at least, each model read
//    once and written once (2 x 100 x P x 4).
//  - triad read_GBps: b and c read (2 x 100 x P x 4 bytes, arrays the size of
//    all models), the same "bytes read" convention; unique_GBps adds the
//    writes of a (3 x 100 x P x 4), i.e. STREAM's count.
// After the table the program prints, per size and thread count, the ratio of
// the read_GBps medians, both medians and their min..max, the same for unique
// bytes and, with one thread, for bytes read per CPU second (steadier than
// wall time on a shared machine: it leaves out time spent descheduled).
//
//   cmake ... -DFEDSIM_BUILD_BENCHMARKS=ON && ninja gossip_bench
//   build/bench/gossip_bench                      # 5 repetitions, interleaved
//   build/bench/gossip_bench --benchmark_filter=Block   # the block-size sweep
#include <algorithm>
#include <cstdio>
#include <map>
#include <string>
#include <thread>
#include <vector>

#include "algorithms/gossip.h"
#include "algorithms/mixing.h"
#include "algorithms/topology.h"
#include "benchmark/benchmark.h"
#include "util/rng.h"

namespace fedsim {
namespace {

constexpr uint32_t kClients = 100;
constexpr uint32_t kDegree = 10;
constexpr size_t kMlpParams = 199210;
constexpr size_t kCnnParams = 1663370;

// One set of models and buffers per size, built on first use and kept.
struct Setup {
  MixingMatrix w;
  std::vector<std::vector<float>> y, z;
  std::vector<std::span<const float>> in;
  std::vector<std::span<float>> out;
  // Triad arrays of kClients x P floats each.
  std::vector<float> a, b, c;
};

Setup& SetupFor(size_t params) {
  static std::map<size_t, Setup>* setups = new std::map<size_t, Setup>();
  auto it = setups->find(params);
  if (it != setups->end()) return it->second;
  Setup& s = (*setups)[params];
  config::Topology topology;
  topology.mutable_random_regular()->set_degree(kDegree);
  auto t = NewTopology(topology, {.num_clients = kClients, .seed = 1}).value();
  s.w = BuildMixing(*t, *t->GraphAt(0), config::METROPOLIS_HASTINGS).value();
  s.y.assign(kClients, std::vector<float>(params));
  s.z.assign(kClients, std::vector<float>(params));
  for (uint32_t i = 0; i < kClients; ++i) {
    Rng rng(1, "gossip_bench", i);
    for (float& x : s.y[i]) x = static_cast<float>(rng.Uniform(-1, 1));
    s.in.emplace_back(s.y[i]);
    s.out.emplace_back(s.z[i]);
  }
  const size_t total = kClients * params;
  s.a.assign(total, 0.0f);
  s.b.assign(total, 1.0f);
  s.c.assign(total, 2.0f);
  return s;
}

size_t ParamsOf(int64_t which) { return which == 0 ? kMlpParams : kCnnParams; }

void SetGBps(benchmark::State& state, double read_bytes, double unique_bytes) {
  state.counters["read_GBps"] =
      benchmark::Counter(read_bytes * 1e-9, benchmark::Counter::kIsIterationInvariantRate);
  state.counters["unique_GBps"] =
      benchmark::Counter(unique_bytes * 1e-9, benchmark::Counter::kIsIterationInvariantRate);
}

// Args: model (0 = MLP, 1 = CNN), threads, block.
void BM_Gossip(benchmark::State& state) {
  const size_t params = ParamsOf(state.range(0));
  Setup& s = SetupFor(params);
  // The calling thread plus threads - 1 pool threads, as GossipStep shares rows.
  const int threads = static_cast<int>(state.range(1));
  std::unique_ptr<ThreadPool> pool =
      threads > 1 ? std::make_unique<ThreadPool>(threads - 1) : nullptr;
  const GossipOptions options{.pool = pool.get(), .block = static_cast<size_t>(state.range(2))};
  for (auto _ : state) {
    absl::Status status = GossipStep(s.w, s.in, s.out, options);
    if (!status.ok()) state.SkipWithError(status.ToString().c_str());
    benchmark::ClobberMemory();
  }
  SetGBps(state, 4.0 * params * static_cast<double>(s.w.num_entries()),
          4.0 * params * 2.0 * kClients);
}

void TriadRange(float* a, const float* b, const float* c, float s, size_t begin, size_t end) {
  for (size_t i = begin; i < end; ++i) a[i] = b[i] + s * c[i];
}

// Args: model, threads. The same thread scheme as GossipStep: threads - 1
// started per call plus the caller, contiguous ranges.
void BM_Triad(benchmark::State& state) {
  const size_t params = ParamsOf(state.range(0));
  Setup& s = SetupFor(params);
  const int threads = static_cast<int>(state.range(1));
  const size_t n = s.a.size();
  float* a = s.a.data();
  const float* b = s.b.data();
  const float* c = s.c.data();
  const float scalar = 0.5f;
  for (auto _ : state) {
    std::vector<std::thread> workers;
    for (int t = 1; t < threads; ++t) {
      workers.emplace_back(TriadRange, a, b, c, scalar, n * t / threads, n * (t + 1) / threads);
    }
    TriadRange(a, b, c, scalar, 0, n / threads);
    for (std::thread& t : workers) t.join();
    benchmark::ClobberMemory();
  }
  SetGBps(state, 4.0 * 2 * n, 4.0 * 3 * n);
}

void MainArgs(benchmark::internal::Benchmark* b, bool gossip) {
  const int max_threads = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  for (int model : {0, 1}) {
    for (int threads : {1, max_threads}) {
      if (gossip) {
        b->Args({model, threads, static_cast<int64_t>(kDefaultGossipBlock)});
      } else {
        b->Args({model, threads});
      }
      if (max_threads == 1) break;
    }
  }
}

BENCHMARK(BM_Gossip)
    ->ArgNames({"model", "threads", "block"})
    ->Apply([](benchmark::internal::Benchmark* b) { MainArgs(b, true); })
    ->UseRealTime()
    ->Unit(benchmark::kMillisecond)
    ->Repetitions(5);
BENCHMARK(BM_Triad)
    ->ArgNames({"model", "threads"})
    ->Apply([](benchmark::internal::Benchmark* b) { MainArgs(b, false); })
    ->UseRealTime()
    ->Unit(benchmark::kMillisecond)
    ->Repetitions(5);
// Block-size sweep, one thread, MLP and CNN: only with a --benchmark_filter
// that names it; not in the summary.
BENCHMARK(BM_Gossip)
    ->Name("BM_GossipBlock")
    ->ArgNames({"model", "threads", "block"})
    ->ArgsProduct({{0, 1}, {1}, {256, 512, 1024, 2048, 4096, 8192, 32768}})
    ->UseRealTime()
    ->Unit(benchmark::kMillisecond);

// Console output as usual, plus the per-repetition counters kept for the
// summary lines.
class SummaryReporter : public benchmark::ConsoleReporter {
 public:
  void ReportRuns(const std::vector<Run>& runs) override {
    ConsoleReporter::ReportRuns(runs);
    for (const Run& run : runs) {
      if (run.run_type != Run::RT_Iteration || run.error_occurred) continue;
      Samples& samples = samples_[run.run_name.function_name + "/" + run.run_name.args];
      samples.read.push_back(run.counters.at("read_GBps"));
      samples.unique.push_back(run.counters.at("unique_GBps"));
      // Per CPU second of the calling thread: only meaningful with one thread.
      samples.read_cpu.push_back(run.counters.at("read_GBps") * run.GetAdjustedRealTime() /
                                 run.GetAdjustedCPUTime());
    }
  }

  void PrintSummary() const {
    std::printf("\nP3 gossip vs triad (GB/s, median (min..max) over repetitions):\n");
    for (const auto& [name, gossip] : samples_) {
      if (name.rfind("BM_Gossip/", 0) != 0) continue;
      // "BM_Gossip/model:0/threads:2/block:2048" -> "BM_Triad/model:0/threads:2".
      const std::string args = name.substr(name.find('/') + 1);
      const std::string key = "BM_Triad/" + args.substr(0, args.rfind('/'));
      auto triad = samples_.find(key);
      if (triad == samples_.end()) continue;
      const bool mlp = args.find("model:0") != std::string::npos;
      std::printf("%s %s\n", mlp ? "MLP (199,210 params)" : "CNN (1,663,370 params)", args.c_str());
      Line("  read  ", gossip.read, triad->second.read);
      Line("  unique", gossip.unique, triad->second.unique);
      if (args.find("threads:1/") != std::string::npos) {
        Line("  read per CPU second", gossip.read_cpu, triad->second.read_cpu);
      }
    }
  }

 private:
  struct Samples {
    std::vector<double> read, unique, read_cpu;
  };
  struct Stats {
    double median, min, max;
  };
  static Stats Of(std::vector<double> v) {
    std::sort(v.begin(), v.end());
    const size_t m = v.size() / 2;
    const double median = v.size() % 2 ? v[m] : 0.5 * (v[m - 1] + v[m]);
    return {median, v.front(), v.back()};
  }
  static void Line(const char* what, const std::vector<double>& gossip,
                   const std::vector<double>& triad) {
    const Stats g = Of(gossip), t = Of(triad);
    std::printf("%s ratio %.2f  gossip %.1f (%.1f..%.1f)  triad %.1f (%.1f..%.1f)\n", what,
                g.median / t.median, g.median, g.min, g.max, t.median, t.min, t.max);
  }
  std::map<std::string, Samples> samples_;
};

}  // namespace
}  // namespace fedsim

int main(int argc, char** argv) {
  // Interleave the repetitions of gossip and triad, so that a noisy spell on
  // a shared machine hits both; a later command-line flag overrides this.
  std::vector<char*> args(argv, argv + argc);
  static char interleave[] = "--benchmark_enable_random_interleaving=true";
  static char no_sweep[] = "--benchmark_filter=-BM_GossipBlock";
  args.insert(args.begin() + 1, {interleave, no_sweep});
  int count = static_cast<int>(args.size());
  benchmark::Initialize(&count, args.data());
  if (benchmark::ReportUnrecognizedArguments(count, args.data())) return 1;
  fedsim::SummaryReporter reporter;
  benchmark::RunSpecifiedBenchmarks(&reporter);
  reporter.PrintSummary();
  benchmark::Shutdown();
  return 0;
}
