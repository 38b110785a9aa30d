// The GPU backend on a real CUDA device (ml/cuda/cuda_net.cu): every model
// against the Eigen model at Fashion-MNIST size and at small sizes, the
// device against its CPU emulation bit for bit, batched training of 64
// clients against 64 one-client runs bit for bit, and one epoch of
// Fashion-MNIST against the CPU trainer's accuracy. The emulation tests
// (ml/gpu/*_test.cc) check the same logic on every machine; these check that
// the device computes what the emulation does. Every test skips, saying why,
// only where no CUDA device is visible (no GPU, no driver, or a build without
// the backend); a device that fails later fails the test.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <numeric>
#include <span>
#include <string>
#include <thread>
#include <vector>

#include "data/dataset.h"
#include "gtest/gtest.h"
#include "ml/gpu/backend_test_util.h"
#include "ml/gpu/batched_trainer.h"
#include "ml/gpu/device.h"
#include "ml/local_trainer.h"
#include "ml/model.h"
#include "ml/numeric.h"
#include "ml/optimizer.h"
#include "util/rng.h"

namespace fedsim {
namespace {

using gpu_test::ExpectMatchesCpu;

const DeviceSpec kCuda{DeviceSpec::Kind::kCuda, 0};
const DeviceSpec kEmulated{DeviceSpec::Kind::kEmulated, 0};

ModelConfig FashionMlp() { return ModelConfig(); }  // mlp(784-200-200-10)

ModelConfig FashionCnn() {  // 1x28x28, conv 32/64 k5, fc 512
  ModelConfig c;
  c.kind = ModelConfig::Kind::kCnn;
  return c;
}

ModelConfig Softmax(int height, int width, int classes) {
  ModelConfig c;
  c.kind = ModelConfig::Kind::kSoftmax;
  c.input_height = height;
  c.input_width = width;
  c.num_classes = classes;
  return c;
}

// ExpectMatchesCpu on the device, with the worst error in the log so that a
// run shows how close, not only that it passed.
void MatchesEigen(const ModelConfig& config, int n) {
  const double worst = ExpectMatchesCpu(config, kCuda, n, 1e-4);
  std::printf("  vs Eigen: worst normwise rel error %.3g, n=%d, %s\n", worst, n,
              config.ToString().c_str());
  EXPECT_LE(worst, 1e-4);
}

// ---- a. Each model against Eigen, layer by layer

TEST(CudaNetTest, SoftmaxMatchesEigen) {
  if (CudaDevicesVisible() == 0) GTEST_SKIP() << CudaDevicesSummary();
  MatchesEigen(Softmax(28, 28, 10), 32);
  MatchesEigen(Softmax(7, 7, 5), 9);
}

TEST(CudaNetTest, MlpMatchesEigen) {
  if (CudaDevicesVisible() == 0) GTEST_SKIP() << CudaDevicesSummary();
  MatchesEigen(FashionMlp(), 32);
  MatchesEigen(gpu_test::SmallMlp(), 13);
}

TEST(CudaNetTest, CnnMatchesEigen) {
  if (CudaDevicesVisible() == 0) GTEST_SKIP() << CudaDevicesSummary();
  MatchesEigen(FashionCnn(), 32);
  MatchesEigen(gpu_test::SmallCnn(), 5);
}

// A batch larger than the model's chunk: Logits and Evaluate run in passes.
TEST(CudaNetTest, LargeBatchMatchesEigen) {
  if (CudaDevicesVisible() == 0) GTEST_SKIP() << CudaDevicesSummary();
  MatchesEigen(FashionMlp(), 600);
}

// ---- b. The device against its CPU emulation, bit for bit

double MaxAbsDiff(std::span<const float> a, std::span<const float> b) {
  double d = 0;
  for (size_t i = 0; i < std::min(a.size(), b.size()); ++i) {
    d = std::max(d, std::abs(static_cast<double>(a[i]) - b[i]));
  }
  return d;
}

void ExpectCudaEqualsEmulation(const ModelConfig& config, int n) {
  const std::string what = config.ToString();
  absl::StatusOr<std::unique_ptr<Model>> cuda = NewModelOn(config, kCuda);
  absl::StatusOr<std::unique_ptr<Model>> emu = NewModelOn(config, kEmulated);
  ASSERT_TRUE(cuda.ok()) << cuda.status();
  ASSERT_TRUE(emu.ok()) << emu.status();
  std::vector<float> params((*emu)->NumParams());
  (*emu)->Init(11, params);
  Rng rng(3, "test-params");  // non-zero biases, as ExpectMatchesCpu
  for (float& p : params) p += static_cast<float>(rng.Uniform(-0.01, 0.01));
  const gpu_test::RandomBatch batch = gpu_test::MakeBatch(config, n, 5);
  const size_t k = static_cast<size_t>(config.num_classes);

  std::vector<float> logits_cuda(n * k), logits_emu(n * k);
  (*cuda)->Logits(params, batch.view(), logits_cuda);
  (*emu)->Logits(params, batch.view(), logits_emu);
  EXPECT_EQ(logits_cuda, logits_emu)
      << what << ": logits, max abs diff " << MaxAbsDiff(logits_cuda, logits_emu);

  std::vector<float> g_cuda(params.size()), g_emu(params.size());
  std::vector<float> dx_cuda(batch.x.size()), dx_emu(batch.x.size());
  const float l_cuda = (*cuda)->ForwardBackward(params, batch.view(), g_cuda, dx_cuda);
  const float l_emu = (*emu)->ForwardBackward(params, batch.view(), g_emu, dx_emu);
  EXPECT_EQ(l_cuda, l_emu) << what << ": loss";
  EXPECT_EQ(g_cuda, g_emu) << what << ": grad, max abs diff " << MaxAbsDiff(g_cuda, g_emu);
  EXPECT_EQ(dx_cuda, dx_emu) << what << ": dinput, max abs diff " << MaxAbsDiff(dx_cuda, dx_emu);

  const EvalResult e_cuda = (*cuda)->Evaluate(params, batch.view());
  const EvalResult e_emu = (*emu)->Evaluate(params, batch.view());
  EXPECT_EQ(e_cuda.loss_sum, e_emu.loss_sum) << what;
  EXPECT_EQ(e_cuda.correct, e_emu.correct) << what;
  std::printf("  cuda == emulation: logits %s, grad %s, dinput %s, n=%d, %s\n",
              logits_cuda == logits_emu ? "yes" : "NO", g_cuda == g_emu ? "yes" : "NO",
              dx_cuda == dx_emu ? "yes" : "NO", n, what.c_str());
}

TEST(CudaNetTest, SmallModelsEqualTheEmulation) {
  if (CudaDevicesVisible() == 0) GTEST_SKIP() << CudaDevicesSummary();
  ExpectCudaEqualsEmulation(gpu_test::SmallMlp(), 13);
  ExpectCudaEqualsEmulation(gpu_test::SmallCnn(), 5);
}

// The emulation is scalar C++: the CNN's batch stays small to keep it quick.
TEST(CudaNetTest, FashionModelsEqualTheEmulation) {
  if (CudaDevicesVisible() == 0) GTEST_SKIP() << CudaDevicesSummary();
  ExpectCudaEqualsEmulation(FashionMlp(), 32);
  ExpectCudaEqualsEmulation(FashionCnn(), 8);
}

// ---- c. Batched training: C clients at once equal C one-client runs

using gpu_test::RandomData;

// `clients` tasks of 20 + 7c rows each (so they take different numbers of
// steps and end on different partial batches), from one base model.
struct Clients {
  ModelConfig config;
  Dataset data;                           // odd clients' rows, uploaded per Train
  std::shared_ptr<const Dataset> shared;  // the same rows, kept on the device
  std::vector<float> base;
  std::vector<std::vector<uint32_t>> rows;
  std::vector<BatchedTask> tasks;
};

std::unique_ptr<Clients> MakeClients(const ModelConfig& config, int clients) {
  auto f = std::make_unique<Clients>();
  f->config = config;
  const size_t pool = 2000;
  f->data = RandomData(config, pool, 1);
  f->shared = std::make_shared<const Dataset>(RandomData(config, pool, 1));
  absl::StatusOr<std::unique_ptr<Model>> m = NewModel(config);
  f->base.resize((*m)->NumParams());
  (*m)->Init(2, f->base);
  for (int c = 0; c < clients; ++c) {
    std::vector<uint32_t> r(20 + 7 * static_cast<size_t>(c));
    for (size_t i = 0; i < r.size(); ++i) r[i] = static_cast<uint32_t>((c * 131 + i * 17) % pool);
    f->rows.push_back(std::move(r));
  }
  for (int c = 0; c < clients; ++c) {
    const uint64_t seed = 1000 + static_cast<uint64_t>(c);
    if (c % 2 == 0) {
      f->tasks.push_back(BatchedTask{f->base, f->shared.get(), f->rows[c], seed, f->shared});
    } else {
      f->tasks.push_back(BatchedTask{f->base, &f->data, f->rows[c], seed, nullptr});
    }
  }
  return f;
}

std::vector<LocalTrainingResult> Train(const ModelConfig& config, const DeviceSpec& device,
                                       const BatchedRecipe& recipe,
                                       std::span<const BatchedTask> tasks) {
  absl::StatusOr<std::unique_ptr<BatchedTrainer>> t =
      BatchedTrainer::Create(config, device, static_cast<int>(tasks.size()));
  EXPECT_TRUE(t.ok()) << t.status();
  if (!t.ok()) return {};
  absl::StatusOr<std::vector<LocalTrainingResult>> r = (*t)->Train(recipe, tasks);
  EXPECT_TRUE(r.ok()) << r.status();
  return r.ok() ? *std::move(r) : std::vector<LocalTrainingResult>{};
}

// One Train of every task against a one-client trainer run once per task.
std::vector<LocalTrainingResult> ExpectBatchedEqualsOneAtATime(const Clients& f,
                                                               const BatchedRecipe& recipe) {
  const std::vector<LocalTrainingResult> together = Train(f.config, kCuda, recipe, f.tasks);
  EXPECT_EQ(together.size(), f.tasks.size());
  if (together.size() != f.tasks.size()) return together;
  absl::StatusOr<std::unique_ptr<BatchedTrainer>> single =
      BatchedTrainer::Create(f.config, kCuda, 1);
  EXPECT_TRUE(single.ok()) << single.status();
  if (!single.ok()) return together;
  int equal = 0;
  for (size_t c = 0; c < f.tasks.size(); ++c) {
    absl::StatusOr<std::vector<LocalTrainingResult>> alone =
        (*single)->Train(recipe, std::span<const BatchedTask>(&f.tasks[c], 1));
    EXPECT_TRUE(alone.ok()) << alone.status();
    if (!alone.ok()) continue;
    const LocalTrainingResult& a = (*alone)[0];
    const LocalTrainingResult& t = together[c];
    EXPECT_EQ(a.delta, t.delta) << "client " << c << ", max abs diff "
                                << MaxAbsDiff(a.delta, t.delta);
    EXPECT_EQ(a.mean_loss, t.mean_loss) << "client " << c;
    EXPECT_EQ(a.steps, t.steps) << "client " << c;
    EXPECT_EQ(t.steps, recipe.schedule.StepsFor(f.rows[c].size())) << "client " << c;
    double norm = 0;
    for (float d : t.delta) norm += std::abs(d);
    EXPECT_GT(norm, 0) << "client " << c << " did not train";
    equal += a.delta == t.delta && a.mean_loss == t.mean_loss;
  }
  std::printf("  C=%zu in one Train == one at a time: %d of %zu clients, %s\n", f.tasks.size(),
              equal, f.tasks.size(), f.config.ToString().c_str());
  return together;
}

BatchedRecipe MomentumRecipe() {
  BatchedRecipe r;
  r.schedule.epochs = 1;
  r.schedule.batch_size = 10;
  r.sgd.lr = 0.1;
  r.sgd.momentum = 0.9;
  return r;
}

TEST(CudaNetTest, BatchedMlp64ClientsEqualOneAtATime) {
  if (CudaDevicesVisible() == 0) GTEST_SKIP() << CudaDevicesSummary();
  const std::unique_ptr<Clients> f = MakeClients(FashionMlp(), 64);
  const BatchedRecipe recipe = MomentumRecipe();
  const std::vector<LocalTrainingResult> gpu = ExpectBatchedEqualsOneAtATime(*f, recipe);
  ASSERT_EQ(gpu.size(), 64u);
  // Three of them on the emulation (the smallest, a middle and the largest
  // client, so that masked steps are covered; the emulation is slow): the
  // device computes its bits.
  const size_t picked[] = {0, 31, 63};
  std::vector<BatchedTask> three;
  for (size_t c : picked) three.push_back(f->tasks[c]);
  const std::vector<LocalTrainingResult> emu = Train(f->config, kEmulated, recipe, three);
  ASSERT_EQ(emu.size(), 3u);
  for (size_t k = 0; k < emu.size(); ++k) {
    const size_t c = picked[k];
    EXPECT_EQ(gpu[c].delta, emu[k].delta)
        << "client " << c << ", max abs diff " << MaxAbsDiff(gpu[c].delta, emu[k].delta);
    EXPECT_EQ(gpu[c].mean_loss, emu[k].mean_loss) << "client " << c;
  }
}

TEST(CudaNetTest, BatchedSamCnn16ClientsEqualOneAtATime) {
  if (CudaDevicesVisible() == 0) GTEST_SKIP() << CudaDevicesSummary();
  const std::unique_ptr<Clients> f = MakeClients(FashionCnn(), 16);
  BatchedRecipe recipe = MomentumRecipe();
  recipe.sam_rho = 0.05;
  EXPECT_EQ(ExpectBatchedEqualsOneAtATime(*f, recipe).size(), 16u);
}

// ---- d. One epoch of Fashion-MNIST: the GPU trains as well as the CPU

double Seconds(std::chrono::steady_clock::time_point since) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - since).count();
}

// Test accuracy of `params`, by the Eigen model, in chunks (the CNN's
// workspace grows with the batch).
double Accuracy(Model& model, std::span<const float> params, const Dataset& test) {
  const size_t chunk = 500;
  std::vector<float> x(chunk * test.dim());
  std::vector<int32_t> y(chunk);
  int64_t correct = 0, count = 0;
  for (size_t begin = 0; begin < test.size(); begin += chunk) {
    const size_t end = std::min(test.size(), begin + chunk);
    test.GatherRange(begin, end, x.data(), y.data());
    const EvalResult e =
        model.Evaluate(params, BatchView{x.data(), y.data(), static_cast<int>(end - begin)});
    correct += e.correct;
    count += e.count;
  }
  return count > 0 ? static_cast<double>(correct) / static_cast<double>(count) : 0.0;
}

// One epoch over all 60,000 training rows (batch 32, lr 0.05) on the CPU
// (TrainLocal, Eigen) and on the GPU (the batched trainer, one task per
// seed, all in one Train), from the same base; test accuracy of both by the
// Eigen model. A single run's accuracy moves by 0.1-0.3 points with nothing
// but the summation order changed (the CPU's native against its
// reproducible numeric mode, seed for seed), so the 0.3-point bound applies
// to the mean over `seeds` batch orders; each seed alone gets 1 point.
void ExpectEpochAccuracyMatchesCpu(const ModelConfig& config, std::span<const uint64_t> seeds) {
  const char* env = std::getenv("FEDSIM_FASHION_MNIST_DIR");
  const std::string dir = env != nullptr && *env != '\0' ? env : kDefaultFashionMnistDir;
  absl::StatusOr<TrainTest> data = LoadFashionMnist(dir);
  if (!data.ok()) {
    GTEST_SKIP() << "Fashion-MNIST not loadable from " << dir << " (set FEDSIM_FASHION_MNIST_DIR "
                 << "or install dataset-fashion-mnist): " << data.status();
  }
  // The CPU side in the reproducible mode (AVX2 + FMA) where the host has
  // it: a portable build's native copy is plain SSE2, about 3x slower.
  ModelConfig cpu_config = config;
  if (CheckNumericSupport(ModelConfig::Numeric::kReproducible).ok()) {
    cpu_config.numeric = ModelConfig::Numeric::kReproducible;
  }
  absl::StatusOr<std::unique_ptr<Model>> cpu = NewModel(cpu_config);
  ASSERT_TRUE(cpu.ok()) << cpu.status();
  std::vector<float> base((*cpu)->NumParams());
  (*cpu)->Init(7, base);
  std::vector<uint32_t> all(data->train.size());
  std::iota(all.begin(), all.end(), 0u);
  BatchedRecipe recipe;
  recipe.schedule.epochs = 1;
  recipe.schedule.batch_size = 32;
  recipe.sgd.lr = 0.05;

  // The CPU epochs run side by side, a model and a thread per seed (each
  // is single-threaded and deterministic, so this changes only the wait).
  auto start = std::chrono::steady_clock::now();
  std::vector<LocalTrainingResult> on_cpu(seeds.size());
  std::vector<absl::Status> cpu_status(seeds.size());
  {
    std::vector<std::thread> threads;
    for (size_t k = 0; k < seeds.size(); ++k) {
      threads.emplace_back([&, k] {
        absl::StatusOr<std::unique_ptr<Model>> model = NewModel(cpu_config);
        absl::StatusOr<std::unique_ptr<Optimizer>> sgd = NewSgdOptimizer(recipe.sgd, base.size());
        if (!model.ok() || !sgd.ok()) {
          cpu_status[k] = !model.ok() ? model.status() : sgd.status();
          return;
        }
        absl::StatusOr<LocalTrainingResult> r =
            TrainLocal(**model, base, data->train, all, recipe.schedule, **sgd, nullptr, seeds[k]);
        if (!r.ok()) {
          cpu_status[k] = r.status();
          return;
        }
        on_cpu[k] = *std::move(r);
      });
    }
    for (std::thread& t : threads) t.join();
  }
  for (const absl::Status& st : cpu_status) ASSERT_TRUE(st.ok()) << st;
  const double cpu_s = Seconds(start);

  start = std::chrono::steady_clock::now();
  std::vector<BatchedTask> tasks;
  for (uint64_t seed : seeds) tasks.push_back(BatchedTask{base, &data->train, all, seed, nullptr});
  const std::vector<LocalTrainingResult> on_gpu = Train(config, kCuda, recipe, tasks);
  ASSERT_EQ(on_gpu.size(), seeds.size());
  const double gpu_s = Seconds(start);

  double mean_cpu = 0, mean_gpu = 0;
  for (size_t k = 0; k < seeds.size(); ++k) {
    EXPECT_EQ(on_gpu[k].steps, on_cpu[k].steps);
    std::vector<float> w_cpu(base), w_gpu(base);
    for (size_t i = 0; i < base.size(); ++i) {
      w_cpu[i] += on_cpu[k].delta[i];
      w_gpu[i] += on_gpu[k].delta[i];
    }
    const double acc_cpu = Accuracy(**cpu, w_cpu, data->test);
    const double acc_gpu = Accuracy(**cpu, w_gpu, data->test);
    std::printf(
        "  seed %llu: test accuracy cpu %.2f%%, gpu %.2f%% (%+.2f points); mean loss cpu "
        "%.4f, gpu %.4f\n",
        static_cast<unsigned long long>(seeds[k]), 100 * acc_cpu, 100 * acc_gpu,
        100 * (acc_gpu - acc_cpu), on_cpu[k].mean_loss, on_gpu[k].mean_loss);
    EXPECT_LE(std::abs(acc_gpu - acc_cpu), 0.01) << "seed " << seeds[k];
    EXPECT_GT(acc_gpu, 0.5) << "seed " << seeds[k] << ": the GPU model did not learn";
    mean_cpu += acc_cpu / static_cast<double>(seeds.size());
    mean_gpu += acc_gpu / static_cast<double>(seeds.size());
  }
  std::printf(
      "  1 epoch of %zu rows x %zu seeds: mean test accuracy cpu %.2f%% (%.1f s), gpu %.2f%% "
      "(%.1f s, one Train); %s\n",
      all.size(), seeds.size(), 100 * mean_cpu, cpu_s, 100 * mean_gpu, gpu_s,
      config.ToString().c_str());
  EXPECT_LE(std::abs(mean_gpu - mean_cpu), 0.003)
      << "mean over " << seeds.size() << " seeds: cpu " << mean_cpu << ", gpu " << mean_gpu;
}

TEST(CudaNetTest, FashionMnistEpochMlpAccuracyMatchesCpu) {
  if (CudaDevicesVisible() == 0) GTEST_SKIP() << CudaDevicesSummary();
  const uint64_t seeds[] = {42, 1, 2, 3, 4};
  ExpectEpochAccuracyMatchesCpu(FashionMlp(), seeds);
}

TEST(CudaNetTest, FashionMnistEpochCnnAccuracyMatchesCpu) {
  if (CudaDevicesVisible() == 0) GTEST_SKIP() << CudaDevicesSummary();
  const uint64_t seeds[] = {42, 1, 2};  // ~1 min per CPU epoch, in parallel
  ExpectEpochAccuracyMatchesCpu(FashionCnn(), seeds);
}

}  // namespace
}  // namespace fedsim
