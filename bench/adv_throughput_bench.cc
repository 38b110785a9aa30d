// Issue 10: adversarial training throughput, samples/s, one thread.
//
// One iteration = one step of PGD-10 adversarial training (Madry): the
// adversarial transform attacks the whole batch (L-infinity, eps 0.1, step
// 0.01, 10 steps from a random start; ml/adversarial.h) against the current
// params, then SGD (lr 0.01, momentum 0.9) steps on the attacked batch, as
// TrainLocal does. items = clean examples, so Google Benchmark reports
// samples/s. pytorch_baseline.py --adversarial runs the same loop in
// PyTorch. Rates are per CPU second, as in train_throughput_bench.
//
//   build/bench/adv_throughput_bench --benchmark_repetitions=5
//   (add --benchmark_report_aggregates_only=true for medians only)
//
// BM_Attack* times the attack alone (10 input-gradient passes), to separate
// it from the training step.
#include <memory>
#include <vector>

#include "benchmark/benchmark.h"
#include "ml/adversarial.h"
#include "ml/attack.h"
#include "ml/model.h"
#include "ml/optimizer.h"
#include "util/rng.h"

namespace fedsim {
namespace {

ModelConfig MlpConfig() { return ModelConfig(); }  // 784-200-200-10

ModelConfig CnnConfig() {
  ModelConfig c;
  c.kind = ModelConfig::Kind::kCnn;
  return c;
}

const AttackOptions kPgd10{.eps = 0.1, .step_size = 0.01, .steps = 10, .random_start = true};

struct Fixture {
  explicit Fixture(const ModelConfig& config) : model(NewModel(config).value()) {
    params.resize(model->NumParams());
    model->Init(1, params);
    // A fixed pool of random "images" in [0, 1), cycled through.
    Rng rng(2, "bench_data");
    x.resize(static_cast<size_t>(kPool) * config.input_dim());
    for (float& v : x) v = static_cast<float>(rng.Uniform());
    y.resize(kPool);
    for (int32_t& l : y) l = static_cast<int32_t>(rng.UniformInt(config.num_classes));
  }
  BatchView Next(int batch) {
    if (pos + batch > kPool) pos = 0;
    const BatchView b{x.data() + static_cast<size_t>(pos) * model->config().input_dim(),
                      y.data() + pos, batch};
    pos += batch;
    return b;
  }

  static constexpr int kPool = 512;
  std::unique_ptr<Model> model;
  std::vector<float> params;
  std::vector<float> x;
  std::vector<int32_t> y;
  int pos = 0;
};

void AdversarialSteps(benchmark::State& state, const ModelConfig& config) {
  const int batch = static_cast<int>(state.range(0));
  Fixture f(config);
  auto transform = NewAdversarialTransform(AdversarialOptions{.attack = kPgd10}).value();
  auto sgd = NewSgdOptimizer(SgdOptions{.lr = 0.01, .momentum = 0.9}, f.params.size()).value();
  uint64_t step = 0;
  for (auto _ : state) {
    Rng rng(3, "transform", step++);
    const BatchView adv = transform->Apply(*f.model, f.params, f.Next(batch), rng);
    Rng step_rng(3, "optimizer", step);
    const float loss = sgd->Step(*f.model, f.params, adv, {}, step_rng);
    benchmark::DoNotOptimize(loss);
  }
  state.SetItemsProcessed(state.iterations() * batch);
  state.SetLabel(config.ToString());
}

void AttackOnly(benchmark::State& state, const ModelConfig& config) {
  const int batch = static_cast<int>(state.range(0));
  Fixture f(config);
  auto attack = NewAttack(kPgd10).value();
  std::vector<float> out(static_cast<size_t>(batch) * config.input_dim());
  uint64_t step = 0;
  for (auto _ : state) {
    Rng rng(3, "transform", step++);
    attack->Perturb(*f.model, f.params, f.Next(batch), rng, out);
    benchmark::DoNotOptimize(out.data());
  }
  state.SetItemsProcessed(state.iterations() * batch);
  state.SetLabel(config.ToString());
}

void BM_AdvTrainMlp(benchmark::State& state) { AdversarialSteps(state, MlpConfig()); }
void BM_AdvTrainCnn(benchmark::State& state) { AdversarialSteps(state, CnnConfig()); }
void BM_AttackMlp(benchmark::State& state) { AttackOnly(state, MlpConfig()); }
void BM_AttackCnn(benchmark::State& state) { AttackOnly(state, CnnConfig()); }

BENCHMARK(BM_AdvTrainMlp)->Arg(32)->MinTime(1.0);
BENCHMARK(BM_AdvTrainCnn)->Arg(32)->MinTime(2.0);
BENCHMARK(BM_AttackMlp)->Arg(32)->MinTime(1.0);
BENCHMARK(BM_AttackCnn)->Arg(32)->MinTime(2.0);

}  // namespace
}  // namespace fedsim

BENCHMARK_MAIN();
