// P7 (BENCHMARKS.md): C clients trained in one batched launch sequence vs
// one client at a time, on the same kernels (ml/gpu/batched_trainer.h).
//
// Each row trains `tasks` clients (`rows` rows each: 60, the pfl recipe, and
// 600; batch 10, 1 epoch, SGD lr
// 0.1: the P2 recipe) with a trainer of C clients, C tasks per Train; C = 1
// is the baseline, the same 64 tasks one after another. samples/s = examples
// processed / wall seconds of the whole pass (uploads, steps and downloads:
// what a simulation pays). Rows alternate within each repetition, so the
// ratio C / 1 of one repetition compares neighbours in time; the table shows
// the median and the spread (min..max) over repetitions.
//
// The "cpu" rows train the pfl recipe's tasks one after another on one CPU
// thread (TrainLocal, the path CPU workers take), for P7's second target:
// C = 64 on the GPU against one CPU core. Their speed depends on how the
// CPU code was built: a portable bundle (FEDSIM_NATIVE=OFF) runs slower
// kernels than a native build, and the line names the numeric fingerprint.
// --cpu_only runs those rows alone, on a machine without a GPU.
//
//   build/bench/gpu_batch_bench                       # cuda:0, 3 repetitions
//   build/bench/gpu_batch_bench --device=emulated --quick   # a local smoke run
//   build/bench/gpu_batch_bench --cpu_only            # the one-core rows only
//
// Flags: --device=cuda[:N]|emulated, --reps=N, --cpu_only, --quick (C in {1, 4}, 4
// tasks of 20 rows, a small CNN: for the CPU emulation, whose figures mean
// nothing for P7). Data: Fashion-MNIST from $FEDSIM_FASHION_MNIST_DIR or
// the default directory when it loads, else random images of its shape.
// Exits 2 when the device cannot run here, 1 on a usage or training error.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "data/dataset.h"
#include "ml/cuda/cuda_net.h"
#include "ml/gpu/batched_trainer.h"
#include "ml/gpu/device.h"
#include "ml/local_trainer.h"
#include "ml/model.h"
#include "ml/numeric.h"
#include "ml/optimizer.h"
#include "util/rng.h"

namespace fedsim {
namespace {

struct Options {
  DeviceSpec device{DeviceSpec::Kind::kCuda, 0};
  bool quick = false;
  bool cpu_only = false;
  int reps = 3;
};

struct Row {
  ModelConfig config;
  int clients = 1;            // C: tasks per Train
  int tasks = 64;             // tasks per timed pass
  int rows = 60;              // rows per client (batch 10: rows / 10 steps)
  std::vector<double> rates;  // samples/s, one per repetition
  bool cpu = false;           // one task at a time on one CPU thread
};

double Median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  const size_t n = v.size();
  return n == 0 ? 0.0 : (n % 2 == 1 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]));
}

// Fashion-MNIST's first `rows` training images, or random images of its
// shape (the speed does not depend on the pixels).
Dataset LoadData(size_t rows, std::string* source) {
  const char* env = std::getenv("FEDSIM_FASHION_MNIST_DIR");
  const std::string dir = env != nullptr && *env != '\0' ? env : kDefaultFashionMnistDir;
  absl::StatusOr<TrainTest> fm = LoadFashionMnist(dir, rows, 1);
  if (fm.ok() && fm->train.size() >= rows) {
    *source = "Fashion-MNIST from " + dir;
    return std::move(fm->train);
  }
  *source = "random 1x28x28 images (Fashion-MNIST not loadable from " + dir + ")";
  Rng rng(1, "bench_data");
  std::vector<uint8_t> x(rows * kFashionMnistShape.dim());
  for (uint8_t& v : x) v = static_cast<uint8_t>(rng.UniformInt(256));
  std::vector<int32_t> y(rows);
  for (int32_t& l : y) l = static_cast<int32_t>(rng.UniformInt(10));
  return Dataset::FromU8(kFashionMnistShape, 10, std::move(x), std::move(y));
}

class Bench {
 public:
  // The data is shared (BatchedTask::owner), as a run's is: the trainer
  // keeps it on the device, and each Train uploads only row numbers.
  Bench(const Options& options, std::shared_ptr<const Dataset> data)
      : options_(options), data_(std::move(data)) {
    recipe_.schedule.epochs = 1;
    recipe_.schedule.batch_size = 10;
    recipe_.sgd.lr = 0.1;
  }

  // One pass of `row`: its tasks in Trains of row.clients; the wall seconds
  // and the examples processed. False (with the error printed) on failure.
  bool Pass(const Row& row, double* seconds, uint64_t* examples) {
    if (row.cpu) return CpuPass(row, seconds, examples);
    auto& trainer = trainers_[Key(row)];
    if (trainer == nullptr) {
      absl::StatusOr<std::unique_ptr<BatchedTrainer>> t =
          BatchedTrainer::Create(row.config, options_.device, row.clients);
      if (!t.ok()) {
        std::fprintf(stderr, "gpu_batch_bench: %s\n", t.status().ToString().c_str());
        return false;
      }
      trainer = *std::move(t);
    }
    const std::vector<float>& base = Base(row.config);
    const std::vector<std::vector<uint32_t>> rows = TaskRows(row);
    std::vector<BatchedTask> tasks;
    for (int k = 0; k < row.tasks; ++k) {
      tasks.push_back(BatchedTask{base, data_.get(), rows[k], static_cast<uint64_t>(k), data_});
    }
    *examples = 0;
    const auto start = std::chrono::steady_clock::now();
    for (int first = 0; first < row.tasks; first += row.clients) {
      const int n = std::min(row.clients, row.tasks - first);
      absl::StatusOr<std::vector<LocalTrainingResult>> r =
          trainer->Train(recipe_, std::span<const BatchedTask>(tasks).subspan(first, n));
      if (!r.ok()) {
        std::fprintf(stderr, "gpu_batch_bench: %s C=%d: %s\n", row.config.ToString().c_str(),
                     row.clients, r.status().ToString().c_str());
        return false;
      }
      for (const LocalTrainingResult& t : *r) *examples += t.examples_processed;
    }
    *seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    return true;
  }

  std::string Backend(const Row& row) {
    if (row.cpu) return "one CPU thread, " + NumericFingerprint(row.config);
    return trainers_[Key(row)]->backend();
  }

 private:
  // Task k's rows: row.rows consecutive rows of the data from k * row.rows.
  std::vector<std::vector<uint32_t>> TaskRows(const Row& row) const {
    std::vector<std::vector<uint32_t>> rows(row.tasks);
    for (int k = 0; k < row.tasks; ++k) {
      rows[k].resize(row.rows);
      for (int r = 0; r < row.rows; ++r) {
        rows[k][r] = static_cast<uint32_t>((static_cast<size_t>(k) * row.rows + r) % data_->size());
      }
    }
    return rows;
  }

  // The row's tasks one after another on this thread, as a CPU worker's
  // slot trains them: the same recipe, a fresh optimizer state per task.
  bool CpuPass(const Row& row, double* seconds, uint64_t* examples) {
    const std::vector<float>& base = Base(row.config);
    const std::vector<std::vector<uint32_t>> rows = TaskRows(row);
    absl::StatusOr<std::unique_ptr<Model>> model = NewModel(row.config);
    absl::StatusOr<std::unique_ptr<Optimizer>> optimizer =
        model.ok() ? NewSgdOptimizer(recipe_.sgd, (*model)->NumParams()) : model.status();
    if (!optimizer.ok()) {
      std::fprintf(stderr, "gpu_batch_bench: %s\n", optimizer.status().ToString().c_str());
      return false;
    }
    *examples = 0;
    const auto start = std::chrono::steady_clock::now();
    for (int k = 0; k < row.tasks; ++k) {
      absl::StatusOr<LocalTrainingResult> r =
          TrainLocal(**model, base, *data_, rows[k], recipe_.schedule, **optimizer, nullptr,
                     static_cast<uint64_t>(k));
      if (!r.ok()) {
        std::fprintf(stderr, "gpu_batch_bench: %s on the CPU: %s\n", row.config.ToString().c_str(),
                     r.status().ToString().c_str());
        return false;
      }
      *examples += r->examples_processed;
    }
    *seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    return true;
  }

  static std::string Key(const Row& row) {
    return row.config.ToString() + "/" + std::to_string(row.clients);
  }
  const std::vector<float>& Base(const ModelConfig& config) {
    std::vector<float>& base = bases_[config.ToString()];
    if (base.empty()) {
      std::unique_ptr<Model> m = NewModel(config).value();
      base.resize(m->NumParams());
      m->Init(1, base);
    }
    return base;
  }

  Options options_;
  std::shared_ptr<const Dataset> data_;
  BatchedRecipe recipe_;
  std::map<std::string, std::unique_ptr<BatchedTrainer>> trainers_;
  std::map<std::string, std::vector<float>> bases_;
};

// a.rates[rep] / b.rates[rep] for each repetition: the rows alternate
// within a repetition, so each ratio compares neighbours in time.
std::vector<double> PerRepRatios(const Row& a, const Row& b) {
  std::vector<double> ratios;
  for (size_t rep = 0; rep < a.rates.size() && rep < b.rates.size(); ++rep) {
    ratios.push_back(a.rates[rep] / b.rates[rep]);
  }
  return ratios;
}

// The one-core row of `gpu`'s model and rows per client, or null.
const Row* CpuRowFor(const std::vector<Row>& rows, const Row& gpu) {
  for (const Row& r : rows) {
    if (r.cpu && r.rows == gpu.rows && r.config.ToString() == gpu.config.ToString()) return &r;
  }
  return nullptr;
}

// P7's second target: C clients on the GPU against one CPU core, >= 20x for
// the CNN (the MLP has no target there).
std::string CpuVerdict(const Row& gpu, const Row& cpu, const Options& options) {
  const std::vector<double> ratios = PerRepRatios(gpu, cpu);
  const auto [lo, hi] = std::minmax_element(ratios.begin(), ratios.end());
  const bool is_cnn = gpu.config.kind == ModelConfig::Kind::kCnn;
  char line[320];
  std::snprintf(line, sizeof line,
                "P7 %s, %d-row clients, C=%d / one CPU core: %.2fx (min..max %.2f..%.2f), %.0f "
                "vs %.0f samples/s; target >= 20x for the CNN: %s",
                gpu.config.ToString().c_str(), gpu.rows, gpu.clients, Median(ratios), *lo, *hi,
                Median(gpu.rates), Median(cpu.rates),
                options.quick            ? "n/a (--quick)"
                : !is_cnn                ? "n/a (the MLP)"
                : Median(ratios) >= 20.0 ? "met"
                                         : "NOT met");
  return line;
}

int Usage(const char* why) {
  std::fprintf(stderr,
               "gpu_batch_bench: %s\nusage: gpu_batch_bench [--device=cuda[:N]|emulated] "
               "[--reps=N] [--quick] [--cpu_only]\n",
               why);
  return 1;
}

// Our batched GEMM against cuBLAS on the shapes a batched step runs (64
// clients): what keeping our own kernel (per-client depths, batch-invariant
// bits) costs or saves.
void CompareGemms(int device) {
  struct Shape {
    const char* what;
    int m, n, k;
  };
  const Shape shapes[] = {{"mlp layer 1 forward (10x784 . 784x200)", 10, 200, 784},
                          {"mlp layer 1 weight grad (784x10 . 10x200)", 784, 200, 10},
                          {"cnn conv2 forward (1960x800 . 800x64)", 1960, 64, 800},
                          {"cnn fc forward (10x3136 . 3136x512)", 10, 512, 3136}};
  std::printf("\nGEMM, 64 products at once, best of 5: ours vs cuBLAS strided-batched SGEMM\n");
  for (const Shape& sh : shapes) {
    gpu::GemmComparison c;
    std::string error;
    if (!gpu::CompareGemmWithCublas(device, 64, sh.m, sh.n, sh.k, 5, &c, &error)) {
      std::printf("  %-44s not measured: %s\n", sh.what, error.c_str());
      continue;
    }
    std::printf(
        "  %-44s ours %.3f ms (%.0f GFLOP/s), cuBLAS %.3f ms (%.0f GFLOP/s), "
        "cuBLAS/ours time %.2f, max rel diff %.1e\n",
        sh.what, c.ours_ms, c.gflops_ours, c.cublas_ms, c.gflops_cublas, c.cublas_ms / c.ours_ms,
        c.max_rel_diff);
  }
}

int Main(int argc, char** argv) {
  Options options;
  for (int i = 1; i < argc; ++i) {
    const std::string_view arg = argv[i];
    if (arg.starts_with("--device=")) {
      absl::StatusOr<DeviceSpec> d = ParseDeviceSpec(arg.substr(9));
      if (!d.ok()) return Usage(std::string(d.status().message()).c_str());
      if (!d->is_gpu_backend()) return Usage("--device must be a GPU backend (cuda:N, emulated)");
      options.device = *d;
    } else if (arg.starts_with("--reps=")) {
      options.reps = std::atoi(argv[i] + 7);
      if (options.reps < 1) return Usage("--reps must be >= 1");
    } else if (arg == "--quick") {
      options.quick = true;
    } else if (arg == "--cpu_only") {
      options.cpu_only = true;
    } else {
      return Usage(("unknown flag " + std::string(arg)).c_str());
    }
  }
  if (absl::Status s = options.cpu_only ? absl::OkStatus() : CheckDevice(options.device); !s.ok()) {
    std::fprintf(stderr, "gpu_batch_bench: device %s unavailable: %s\n",
                 options.device.ToString().c_str(), std::string(s.message()).c_str());
    return 2;
  }

  ModelConfig mlp;  // mlp(784-200-200-10)
  ModelConfig cnn;  // McMahan's CNN
  cnn.kind = ModelConfig::Kind::kCnn;
  const int rows_per_client = options.quick ? 20 : 60;
  std::vector<Row> rows;
  if (options.quick) {
    cnn.conv1 = 4;  // scalar emulation: a CNN of every layer kind, small
    cnn.conv2 = 8;
    cnn.fc = 32;
  }
  if (options.cpu_only) {
    // Below, the one-core rows are all there is.
  } else if (options.quick) {
    for (const ModelConfig& c : {mlp, cnn}) {
      for (int clients : {1, 4}) rows.push_back(Row{c, clients, 4, rows_per_client, {}});
    }
  } else {
    // The pfl recipe's clients (60 rows: 6 steps, where moving each
    // client's model in and out weighs as much as its steps), then clients
    // of 600 rows (60 steps), where the steps dominate.
    for (int clients : {1, 16, 64, 256}) {
      rows.push_back(Row{mlp, clients, std::max(clients, 64), 60, {}});
    }
    for (int clients : {1, 64}) rows.push_back(Row{mlp, clients, 64, 600, {}});
    for (int clients : {1, 64}) rows.push_back(Row{cnn, clients, 64, 60, {}});
    for (int clients : {1, 64}) rows.push_back(Row{cnn, clients, 64, 600, {}});
  }
  // The pfl recipe's tasks on one CPU thread (P7: C = 64 against one core).
  for (const ModelConfig& c : {mlp, cnn}) {
    // 16 tasks: samples/s does not depend on how many, and a CPU pass of the
    // CNN stays a few seconds even in a portable build.
    rows.push_back(Row{c, 1, options.quick ? 4 : 16, rows_per_client, {}, true});
  }
  size_t max_rows = 0;
  for (const Row& r : rows) max_rows = std::max(max_rows, static_cast<size_t>(r.tasks) * r.rows);
  std::string source;
  auto data = std::make_shared<const Dataset>(LoadData(max_rows, &source));
  Bench bench(options, data);

  double seconds = 0;
  uint64_t examples = 0;
  for (const Row& r : rows) {  // warm-up: allocations, first launches
    if (!bench.Pass(r, &seconds, &examples)) return 1;
  }
  if (!options.cpu_only) {
    std::printf("P7 gpu_batch_bench on %s\n", bench.Backend(rows[0]).c_str());
  }
  std::printf("cpu rows: %s\n", bench.Backend(rows.back()).c_str());
  std::printf("data: %s; batch 10, 1 epoch, SGD lr 0.1; %d repetitions\n", source.c_str(),
              options.reps);
  for (int rep = 0; rep < options.reps; ++rep) {
    for (Row& r : rows) {
      if (!bench.Pass(r, &seconds, &examples)) return 1;
      r.rates.push_back(static_cast<double>(examples) / seconds);
    }
  }

  std::printf("\n%-52s %5s %6s %5s %14s %25s %24s\n", "model", "C", "tasks", "rows", "samples/s",
              "min..max", "vs C=1 (min..max)");
  std::vector<std::string> verdicts;
  const Row* baseline = nullptr;
  for (const Row& r : rows) {
    const auto [lo, hi] = std::minmax_element(r.rates.begin(), r.rates.end());
    char range[64];
    std::snprintf(range, sizeof range, "%.0f..%.0f", *lo, *hi);
    if (r.cpu) {
      std::printf("%-52s %5s %6d %5d %14.0f %25s %24s\n", r.config.ToString().c_str(), "cpu",
                  r.tasks, r.rows, Median(r.rates), range, "-");
      continue;
    }
    if (r.clients == 1) baseline = &r;
    const std::vector<double> ratios = PerRepRatios(r, *baseline);
    const auto [rlo, rhi] = std::minmax_element(ratios.begin(), ratios.end());
    char ratio[64];
    std::snprintf(ratio, sizeof ratio, "%.2fx (%.2f..%.2f)", Median(ratios), *rlo, *rhi);
    std::printf("%-52s %5d %6d %5d %14.0f %25s %24s\n", r.config.ToString().c_str(), r.clients,
                r.tasks, r.rows, Median(r.rates), range, r.clients == 1 ? "1" : ratio);
    const int target_c = options.quick ? 4 : 64;
    if (r.clients == target_c) {
      char line[256];
      std::snprintf(line, sizeof line,
                    "P7 %s, %d-row clients, C=%d / C=1: %.2fx (min..max %.2f..%.2f), %.0f vs "
                    "%.0f samples/s; target >= 10x: %s",
                    r.config.ToString().c_str(), r.rows, r.clients, Median(ratios), *rlo, *rhi,
                    Median(r.rates), Median(baseline->rates),
                    options.quick          ? "n/a (--quick)"
                    : Median(ratios) >= 10 ? "met"
                                           : "NOT met");
      verdicts.push_back(line);
      if (const Row* cpu = CpuRowFor(rows, r); cpu != nullptr) {
        verdicts.push_back(CpuVerdict(r, *cpu, options));
      }
    }
  }
  if (options.cpu_only) {
    for (const Row& r : rows) {
      const auto [lo, hi] = std::minmax_element(r.rates.begin(), r.rates.end());
      char line[256];
      std::snprintf(line, sizeof line,
                    "P7 cpu row: %s, %d-row clients, one CPU thread: %.0f samples/s "
                    "(min..max %.0f..%.0f)",
                    r.config.ToString().c_str(), r.rows, Median(r.rates), *lo, *hi);
      verdicts.push_back(line);
    }
  }
  std::printf("\n");
  for (const std::string& v : verdicts) std::printf("%s\n", v.c_str());
  if (!options.cpu_only && options.device.kind == DeviceSpec::Kind::kCuda) {
    CompareGemms(options.device.index);
  }
  return 0;
}

}  // namespace
}  // namespace fedsim

int main(int argc, char** argv) { return fedsim::Main(argc, argv); }
