// P1 (BENCHMARKS.md): local training throughput, samples/s, one thread.
//
// Rates are per CPU second (Google Benchmark's default), as in
// pytorch_baseline.py: on a shared machine wall time measures the neighbours.
// One iteration = one SGD step (Model::ForwardBackwardStep) on a batch, the
// inner loop of TrainLocal; items = examples, so Google Benchmark reports
// samples/s. Also a 1024^3 float GEMM with Eigen: the machine's single-core
// peak, in GFLOP/s, that the MLP's figure is compared against.
//
//   build-ml/bench/train_throughput_bench --benchmark_repetitions=5
//   (add --benchmark_report_aggregates_only=true for medians only)
#include <memory>
#include <vector>

#include "Eigen/Core"
#include "benchmark/benchmark.h"
#include "ml/model.h"
#include "ml/sgd.h"
#include "util/rng.h"

namespace fedsim {
namespace {

ModelConfig MlpConfig() { return ModelConfig(); }  // 784-200-200-10

ModelConfig CnnConfig() {
  ModelConfig c;
  c.kind = ModelConfig::Kind::kCnn;
  return c;
}

void TrainSteps(benchmark::State& state, const ModelConfig& config, bool fused,
                double momentum = 0.9) {
  const int batch = static_cast<int>(state.range(0));
  auto model = NewModel(config).value();
  std::vector<float> params(model->NumParams()), grad(model->NumParams());
  model->Init(1, params);
  // A fixed pool of random "images" in [0, 1), cycled through.
  const int pool = 512;
  Rng rng(2, "bench_data");
  std::vector<float> x(static_cast<size_t>(pool) * config.input_dim());
  for (float& v : x) v = static_cast<float>(rng.Uniform());
  std::vector<int32_t> y(pool);
  for (int32_t& l : y) l = static_cast<int32_t>(rng.UniformInt(config.num_classes));
  Sgd sgd(SgdOptions{.lr = 0.01, .momentum = momentum}, params.size());
  int pos = 0;
  for (auto _ : state) {
    if (pos + batch > pool) pos = 0;
    const BatchView b{x.data() + static_cast<size_t>(pos) * config.input_dim(), y.data() + pos,
                      batch};
    const float loss = fused ? model->ForwardBackwardStep(params, b, sgd)
                             : model->ForwardBackward(params, b, grad);
    benchmark::DoNotOptimize(loss);
    if (!fused) sgd.Step(params, grad);
    pos += batch;
  }
  state.SetItemsProcessed(state.iterations() * batch);
  state.SetLabel(config.ToString());
}

// The fused step TrainLocal runs (Model::ForwardBackwardStep), and the same
// step as two calls (ForwardBackward + Sgd::Step; bit-identical results).
void BM_TrainMlp(benchmark::State& state) { TrainSteps(state, MlpConfig(), true); }
void BM_TrainCnn(benchmark::State& state) { TrainSteps(state, CnnConfig(), true); }
void BM_TrainMlpUnfused(benchmark::State& state) { TrainSteps(state, MlpConfig(), false); }
void BM_TrainCnnUnfused(benchmark::State& state) { TrainSteps(state, CnnConfig(), false); }

BENCHMARK(BM_TrainMlp)->Arg(10)->Arg(32)->Arg(64)->MinTime(0.5);

// Plain SGD (momentum 0), what the pfl recipe's tasks run: the step then
// streams the weights alone, not the weights and the velocity. At batch 10
// the momentum step is a third of the time (BENCHMARKS.md P1 figures use
// momentum 0.9, as the PyTorch baseline does).
void BM_TrainMlpPlainSgd(benchmark::State& state) { TrainSteps(state, MlpConfig(), true, 0.0); }
BENCHMARK(BM_TrainMlpPlainSgd)->Arg(10)->MinTime(0.5);
BENCHMARK(BM_TrainCnn)->Arg(10)->Arg(32)->Arg(64)->MinTime(1.0);
BENCHMARK(BM_TrainMlpUnfused)->Arg(10)->Arg(32)->Arg(64)->MinTime(0.5);
BENCHMARK(BM_TrainCnnUnfused)->Arg(10)->Arg(32)->Arg(64)->MinTime(1.0);

// C = A * B, all 1024 x 1024 row-major floats: 2 * 1024^3 flops.
void BM_GemmPeak(benchmark::State& state) {
  const int n = static_cast<int>(state.range(0));
  using Mat = Eigen::Matrix<float, Eigen::Dynamic, Eigen::Dynamic, Eigen::RowMajor>;
  Mat a = Mat::Random(n, n), b = Mat::Random(n, n), c(n, n);
  for (auto _ : state) {
    c.noalias() = a * b;
    benchmark::DoNotOptimize(c.data());
    benchmark::ClobberMemory();
  }
  const double flops = 2.0 * n * n * n;
  state.counters["GFLOPs"] =
      benchmark::Counter(flops * 1e-9, benchmark::Counter::kIsIterationInvariantRate);
}
BENCHMARK(BM_GemmPeak)->Arg(1024)->MinTime(0.5);

}  // namespace
}  // namespace fedsim

BENCHMARK_MAIN();
