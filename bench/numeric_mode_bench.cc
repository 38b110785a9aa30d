// The cost of the reproducible numeric mode (ml/numeric.h): local training
// throughput, samples per CPU second, one thread, native against
// reproducible, for the MLP 784-200-200-10 and McMahan's CNN at batch 10 and
// 64. One step = Model::ForwardBackwardStep (SGD, momentum 0.9), the inner
// loop of TrainLocal, as in train_throughput_bench.
//
// The two modes alternate within each repetition (BENCHMARKS.md: the ratio
// is what travels between machines); each line gives the ratio
// reproducible / native, both medians and their spread (min..max).
//
//   build/bench/numeric_mode_bench [--reps=5] [--seconds=0.5]
#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <memory>
#include <string>
#include <vector>

#include "ml/model.h"
#include "ml/numeric.h"
#include "ml/sgd.h"
#include "util/rng.h"

namespace fedsim {
namespace {

double CpuSeconds() {
  timespec t;
  clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &t);
  return static_cast<double>(t.tv_sec) + 1e-9 * static_cast<double>(t.tv_nsec);
}

// Samples per CPU second over at least `seconds` of steps.
double SamplesPerSecond(const ModelConfig& config, int batch, double seconds) {
  std::unique_ptr<Model> model = NewModel(config).value();
  std::vector<float> params(model->NumParams());
  model->Init(1, params);
  // A fixed pool of random "images" in [0, 1), cycled through.
  const int pool = 512;
  Rng rng(2, "bench_data");
  std::vector<float> x(static_cast<size_t>(pool) * config.input_dim());
  for (float& v : x) v = static_cast<float>(rng.Uniform());
  std::vector<int32_t> y(pool);
  for (int32_t& l : y) l = static_cast<int32_t>(rng.UniformInt(config.num_classes));
  Sgd sgd(SgdOptions{.lr = 0.01, .momentum = 0.9}, params.size());
  int pos = 0;
  auto step = [&] {
    if (pos + batch > pool) pos = 0;
    model->ForwardBackwardStep(
        params,
        BatchView{x.data() + static_cast<size_t>(pos) * config.input_dim(), y.data() + pos, batch},
        sgd);
    pos += batch;
  };
  for (int i = 0; i < 3; ++i) step();  // workspaces grown, caches warm
  long samples = 0;
  const double start = CpuSeconds();
  double now = start;
  do {
    step();
    samples += batch;
    now = CpuSeconds();
  } while (now - start < seconds);
  return static_cast<double>(samples) / (now - start);
}

double FlagValue(int argc, char** argv, const char* name, double fallback) {
  const size_t len = std::strlen(name);
  for (int i = 1; i < argc; ++i) {
    if (std::strncmp(argv[i], name, len) == 0 && argv[i][len] == '=') {
      return std::atof(argv[i] + len + 1);
    }
  }
  return fallback;
}

int Main(int argc, char** argv) {
  const int reps = std::max(1, static_cast<int>(FlagValue(argc, argv, "--reps", 5)));
  const double seconds = FlagValue(argc, argv, "--seconds", 0.5);
  if (absl::Status s = CheckNumericSupport(ModelConfig::Numeric::kReproducible); !s.ok()) {
    std::fprintf(stderr, "numeric_mode_bench: %s\n", std::string(s.message()).c_str());
    return 1;
  }
  ModelConfig mlp;
  ModelConfig cnn;
  cnn.kind = ModelConfig::Kind::kCnn;
  std::printf("native:       %s\nreproducible: ", NumericFingerprint(mlp).c_str());
  mlp.numeric = ModelConfig::Numeric::kReproducible;
  std::printf("%s\n", NumericFingerprint(mlp).c_str());
  mlp.numeric = ModelConfig::Numeric::kNative;
  struct Case {
    const char* name;
    ModelConfig config;
    int batch;
  };
  for (const Case& c :
       {Case{"mlp", mlp, 10}, Case{"mlp", mlp, 64}, Case{"cnn", cnn, 10}, Case{"cnn", cnn, 64}}) {
    std::vector<double> rate[2];
    for (int r = 0; r < reps; ++r) {
      for (int mode = 0; mode < 2; ++mode) {
        ModelConfig config = c.config;
        config.numeric =
            mode == 0 ? ModelConfig::Numeric::kNative : ModelConfig::Numeric::kReproducible;
        rate[mode].push_back(SamplesPerSecond(config, c.batch, seconds));
      }
    }
    for (std::vector<double>& v : rate) std::sort(v.begin(), v.end());
    const double native = rate[0][reps / 2], repro = rate[1][reps / 2];
    std::printf(
        "%s batch %d: ratio %.2f  reproducible %.0f (%.0f..%.0f)  native %.0f (%.0f..%.0f) "
        "samples/s\n",
        c.name, c.batch, repro / native, repro, rate[1].front(), rate[1].back(), native,
        rate[0].front(), rate[0].back());
    std::fflush(stdout);
  }
  return 0;
}

}  // namespace
}  // namespace fedsim

int main(int argc, char** argv) { return fedsim::Main(argc, argv); }
