// fedsim train: centralized training of one model on one dataset, the
// reference every federated result is compared against.
//
// Prints the model, the SGD settings and the numeric fingerprint
// (ml/numeric.h), then one line per epoch to stdout (train loss, test loss and
// accuracy, epoch seconds, samples/s) and, when stderr is a terminal, a live
// progress line during the epoch. Exit codes: 0 done, 1 data could not be loaded,
// 2 bad flags.
//
// Adversarial training and robust evaluation take the scenario's own
// messages, so the centralized reference trains and evaluates exactly as a
// run does: --adversarial is a config::Adversarial (local { adversarial {} })
// and --robust a config::Robust (eval { robust {} }), both in text format,
// read by runtime/ (local_recipe.h, robust_recipe.h) and checked by the same
// validation. The per-step random streams are TrainLocal's (ml/local_trainer.h)
// and the robust plan is the sim evaluator's for the same seed, so the
// robust_acc printed here is the robust_accuracy a run's evaluator would
// report for these parameters.
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <memory>
#include <numeric>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "data/dataset.h"
#include "google/protobuf/text_format.h"
#include "ml/model.h"
#include "ml/numeric.h"
#include "ml/robust_eval.h"
#include "proto/scenario.pb.h"
#include "runtime/local_recipe.h"
#include "runtime/robust_recipe.h"
#include "tools/commands.h"
#include "tools/common_flags.h"
#include "util/problems.h"
#include "util/rng.h"
#include "util/spell.h"

ABSL_FLAG(std::string, model, "mlp",
          "Model to train: softmax (softmax regression), mlp (ReLU MLP, see --hidden) or cnn "
          "(McMahan's CNN: conv5x5x32-pool-conv5x5x64-pool-fc512).");
ABSL_FLAG(std::vector<std::string>, hidden, std::vector<std::string>({"200", "200"}),
          "MLP hidden layer widths, comma-separated (only with --model=mlp).");
ABSL_FLAG(int32_t, epochs, 5, "Passes over the training set (> 0).");
ABSL_FLAG(int32_t, batch_size, 32, "Minibatch size (> 0).");
ABSL_FLAG(double, lr, 0.02, "SGD learning rate (> 0).");
ABSL_FLAG(double, momentum, 0.9, "SGD momentum in [0, 1); 0 = plain SGD.");
ABSL_FLAG(double, weight_decay, 0.0, "L2 weight decay added to the gradient (>= 0).");
ABSL_FLAG(uint64_t, seed, 1,
          "Seed of the initialization, the batch order and generated data; the same seed "
          "gives the same run.");
ABSL_FLAG(std::string, dataset, "fashion_mnist",
          "Dataset: fashion_mnist (IDX files in --data_dir) or synthetic (FedProx "
          "Synthetic(1,1), all --synthetic_clients clients' data pooled).");
ABSL_FLAG(std::string, data_dir, fedsim::kDefaultFashionMnistDir,
          "Folder holding the Fashion-MNIST *-ubyte.gz files (Debian package "
          "dataset-fashion-mnist).");
ABSL_FLAG(std::string, numeric, "native",
          "Numeric mode: native (kernels for this host; fastest, host-dependent bits) or "
          "reproducible (x86-64-v3 kernels, fixed GEMM blocking: the same bits on every "
          "x86-64-v3 host). The output's 'numeric:' line names what the bits depend on.");
ABSL_FLAG(int32_t, train_limit, 0, "Use only the first N training examples (0 = all).");
ABSL_FLAG(int32_t, test_limit, 0, "Use only the first N test examples (0 = all).");
ABSL_FLAG(int32_t, synthetic_clients, 30,
          "With --dataset=synthetic: number of clients whose data is generated and pooled.");
ABSL_FLAG(std::string, adversarial, "",
          "Adversarial training: the fields of a scenario's local { adversarial { ... } } in "
          "protobuf text format, e.g. 'eps: 0.1 steps: 10' (Madry PGD-10), 'eps: 0.1 ratio: 0.5' "
          "(FAT mix) or 'eps: 0.1 trades_beta: 6' (TRADES). Empty = clean training.");
ABSL_FLAG(std::string, robust, "",
          "Robust evaluation after every epoch: the fields of a scenario's eval { robust { ... } } "
          "in protobuf text format, e.g. 'eps: 0.1 steps: 20 examples: 1000 fgsm: true'; the "
          "subset and random starts come from --seed, as in a run. Empty = none.");

namespace fedsim {
namespace {

constexpr int kEvalBatch = 1000;

int FlagError(const std::string& message) {
  std::fprintf(stderr, "fedsim train: %s\n", message.c_str());
  return 2;
}

double Seconds(std::chrono::steady_clock::duration d) {
  return std::chrono::duration<double>(d).count();
}

EvalResult EvaluateAll(Model& model, std::span<const float> params, const Dataset& data) {
  EvalResult total;
  std::vector<float> x(static_cast<size_t>(kEvalBatch) * data.dim());
  std::vector<int32_t> y(kEvalBatch);
  for (size_t begin = 0; begin < data.size(); begin += kEvalBatch) {
    const size_t end = std::min(data.size(), begin + kEvalBatch);
    data.GatherRange(begin, end, x.data(), y.data());
    const EvalResult r =
        model.Evaluate(params, BatchView{x.data(), y.data(), static_cast<int>(end - begin)});
    total.loss_sum += r.loss_sum;
    total.correct += r.correct;
    total.count += r.count;
  }
  return total;
}

// Parses a text-format message flag and validates it with `validate`;
// returns the problems as one flag error message, or "" when it is fine.
template <typename M, typename V>
std::string ParseMessageFlag(const std::string& flag, const std::string& text, M* out,
                             V validate) {
  if (!google::protobuf::TextFormat::ParseFromString(text, out)) {
    return absl::StrCat("--", flag, " is not a valid ", M::descriptor()->full_name(),
                        " in text format: '", text, "'");
  }
  ProblemList problems;
  validate(*out, "--" + flag, &problems);
  if (problems.empty()) return "";
  return std::string(problems.ToStatus().message());
}

Dataset Prefix(const Dataset& d, int limit) {
  if (limit <= 0 || static_cast<size_t>(limit) >= d.size()) return d;
  std::vector<uint32_t> idx(static_cast<size_t>(limit));
  std::iota(idx.begin(), idx.end(), 0u);
  return d.Subset(idx);
}

}  // namespace

int TrainMain(int argc, char** argv) {
  std::vector<char*> rest = absl::ParseCommandLine(argc, argv);
  if (rest.size() > 1) {
    return FlagError(absl::StrCat("unexpected argument '", rest[1], "' (flags only; see --help)"));
  }

  // --- Flags.
  ModelConfig config;
  const std::string model_name = absl::GetFlag(FLAGS_model);
  constexpr std::string_view kModels[] = {"softmax", "mlp", "cnn"};
  if (model_name == "softmax") {
    config.kind = ModelConfig::Kind::kSoftmax;
  } else if (model_name == "mlp") {
    config.kind = ModelConfig::Kind::kMlp;
  } else if (model_name == "cnn") {
    config.kind = ModelConfig::Kind::kCnn;
  } else {
    return FlagError(absl::StrCat("--model must be softmax, mlp or cnn, got '", model_name, "'",
                                  DidYouMean(model_name, kModels)));
  }
  const std::string numeric_name = absl::GetFlag(FLAGS_numeric);
  constexpr std::string_view kNumerics[] = {"native", "reproducible"};
  if (numeric_name == "native") {
    config.numeric = ModelConfig::Numeric::kNative;
  } else if (numeric_name == "reproducible") {
    config.numeric = ModelConfig::Numeric::kReproducible;
  } else {
    return FlagError(absl::StrCat("--numeric must be native or reproducible, got '",
                                  numeric_name, "'", DidYouMean(numeric_name, kNumerics)));
  }
  config.hidden.clear();
  for (const std::string& h : absl::GetFlag(FLAGS_hidden)) {
    int width = 0;
    if (h.empty()) continue;
    if (!absl::SimpleAtoi(h, &width) || width <= 0) {
      return FlagError(absl::StrCat("--hidden takes positive integers, got '", h, "'"));
    }
    config.hidden.push_back(width);
  }
  const int epochs = absl::GetFlag(FLAGS_epochs);
  const int batch_size = absl::GetFlag(FLAGS_batch_size);
  SgdOptions sgd_options{.lr = absl::GetFlag(FLAGS_lr),
                         .momentum = absl::GetFlag(FLAGS_momentum),
                         .weight_decay = absl::GetFlag(FLAGS_weight_decay)};
  const uint64_t seed = absl::GetFlag(FLAGS_seed);
  ProblemList device_problems;
  const DeviceSpec device = DeviceFromFlag(DeviceSpec{}, &device_problems);
  if (!device_problems.empty()) {
    return FlagError(absl::StrCat("--device: ", device_problems.problems().front().message));
  }
  if (epochs <= 0) return FlagError(absl::StrCat("--epochs must be > 0, got ", epochs));
  if (batch_size <= 0) return FlagError(absl::StrCat("--batch_size must be > 0, got ", batch_size));
  if (!(sgd_options.lr > 0.0)) return FlagError(absl::StrCat("--lr must be > 0, got ", sgd_options.lr));
  if (!(sgd_options.momentum >= 0.0 && sgd_options.momentum < 1.0)) {
    return FlagError(absl::StrCat("--momentum must be in [0, 1), got ", sgd_options.momentum));
  }
  if (!(sgd_options.weight_decay >= 0.0)) {
    return FlagError(absl::StrCat("--weight_decay must be >= 0, got ", sgd_options.weight_decay));
  }
  if (absl::GetFlag(FLAGS_train_limit) < 0 || absl::GetFlag(FLAGS_test_limit) < 0) {
    return FlagError("--train_limit and --test_limit must be >= 0");
  }
  const std::string dataset_name = absl::GetFlag(FLAGS_dataset);
  constexpr std::string_view kDatasets[] = {"fashion_mnist", "synthetic"};
  if (dataset_name != "fashion_mnist" && dataset_name != "synthetic") {
    return FlagError(absl::StrCat("--dataset must be fashion_mnist or synthetic, got '",
                                  dataset_name, "'", DidYouMean(dataset_name, kDatasets)));
  }
  const int synthetic_clients = absl::GetFlag(FLAGS_synthetic_clients);
  if (dataset_name == "synthetic" && synthetic_clients <= 0) {
    return FlagError(absl::StrCat("--synthetic_clients must be > 0, got ", synthetic_clients));
  }
  // The local-training message a run's task would carry: SGD and, when
  // asked, the adversarial block.
  config::LocalTraining local;
  local.set_lr(sgd_options.lr);
  local.set_momentum(sgd_options.momentum);
  local.set_weight_decay(sgd_options.weight_decay);
  if (const std::string text = absl::GetFlag(FLAGS_adversarial); !text.empty()) {
    const std::string error =
        ParseMessageFlag("adversarial", text, local.mutable_adversarial(), ValidateAdversarial);
    if (!error.empty()) return FlagError(error);
  }
  std::optional<RobustEvalPlan> robust_plan;
  if (const std::string text = absl::GetFlag(FLAGS_robust); !text.empty()) {
    config::Robust robust;
    const std::string error = ParseMessageFlag("robust", text, &robust, ValidateRobust);
    if (!error.empty()) return FlagError(error);
    robust_plan = RobustEvalFromConfig(robust, seed);
  }

  // --- Data.
  const auto load_start = std::chrono::steady_clock::now();
  Dataset train, test;
  if (dataset_name == "fashion_mnist") {
    absl::StatusOr<TrainTest> tt =
        LoadFashionMnist(absl::GetFlag(FLAGS_data_dir),
                         static_cast<size_t>(absl::GetFlag(FLAGS_train_limit)),
                         static_cast<size_t>(absl::GetFlag(FLAGS_test_limit)));
    if (!tt.ok()) {
      std::fprintf(stderr, "fedsim train: %s\n", std::string(tt.status().message()).c_str());
      return 1;
    }
    train = std::move(tt->train);
    test = std::move(tt->test);
  } else {
    absl::StatusOr<FederatedData> fd = GenerateSynthetic(SyntheticOptions{}, synthetic_clients, seed);
    if (!fd.ok()) {
      std::fprintf(stderr, "fedsim train: %s\n", std::string(fd.status().message()).c_str());
      return 1;
    }
    train = Prefix(fd->train, absl::GetFlag(FLAGS_train_limit));
    test = Prefix(fd->test, absl::GetFlag(FLAGS_test_limit));
  }
  if (train.size() == 0 || test.size() == 0) {
    std::fprintf(stderr, "fedsim train: empty dataset (train %zu, test %zu examples)\n",
                 train.size(), test.size());
    return 1;
  }

  // --- Model.
  config.input_channels = train.shape().channels;
  config.input_height = train.shape().height;
  config.input_width = train.shape().width;
  config.num_classes = train.num_classes();
  // On a GPU the model runs behind the Model interface (ml/gpu/gpu_model.h),
  // so this loop, its optimizers and attacks run unchanged.
  absl::StatusOr<std::unique_ptr<Model>> made = NewModelOn(config, device);
  if (!made.ok()) {
    return FlagError(absl::StrCat("cannot build --model=", model_name, " for ", dataset_name,
                                  ": ", std::string(made.status().message())));
  }
  Model& model = **made;
  std::vector<float> params(model.NumParams());
  model.Init(seed, params);
  absl::StatusOr<LocalRecipe> recipe = NewLocalRecipe(local, params.size());
  if (!recipe.ok()) return FlagError(std::string(recipe.status().message()));
  Optimizer& optimizer = *recipe->optimizer;
  BatchTransform* transform = recipe->transform.get();
  std::vector<uint32_t> robust_rows;
  if (robust_plan.has_value()) {
    robust_rows = RobustEvalSubset(test.size(), robust_plan->examples, seed);
    robust_plan->examples = robust_rows.size();
  }

  std::printf("fedsim train: %s, %zu params | %s: %zu train, %zu test (loaded in %.2fs)\n",
              config.ToString().c_str(), model.NumParams(), dataset_name.c_str(), train.size(),
              test.size(), Seconds(std::chrono::steady_clock::now() - load_start));
  std::printf("sgd: epochs %d, batch %d, lr %g, momentum %g, weight_decay %g, seed %llu\n",
              epochs, batch_size, sgd_options.lr, sgd_options.momentum,
              sgd_options.weight_decay, static_cast<unsigned long long>(seed));
  if (local.has_adversarial()) {
    std::printf("adversarial: %s%s (%d forward-backward passes per step)\n",
                optimizer.Name().c_str(),
                transform != nullptr ? (" on " + transform->Name()).c_str() : "",
                optimizer.passes_per_step() + (transform != nullptr ? transform->passes_per_step() : 0));
  }
  if (robust_plan.has_value()) {
    std::printf("robust eval: %s\n", RobustEvalPlanName(*robust_plan).c_str());
  }
  if (device.is_gpu_backend()) {
    std::printf("device: %s (the GPU backend; results agree with the CPU's within float "
                "tolerance)\n",
                device.ToString().c_str());
  } else {
    std::printf("numeric: %s\n", NumericFingerprint(config).c_str());
  }
  std::fflush(stdout);

  // --- Training.
  const bool tty = isatty(fileno(stderr));
  const size_t n_train = train.size();
  const size_t batch = std::min<size_t>(batch_size, n_train);
  std::vector<uint32_t> order(n_train);
  std::vector<float> x(batch * train.dim());
  std::vector<int32_t> y(batch);
  const auto run_start = std::chrono::steady_clock::now();
  uint64_t step = 0;  // across epochs, as TrainLocal counts them
  for (int epoch = 0; epoch < epochs; ++epoch) {
    std::iota(order.begin(), order.end(), 0u);
    Rng(seed, "batch_order", static_cast<uint64_t>(epoch)).Shuffle(order);
    const auto epoch_start = std::chrono::steady_clock::now();
    auto last_progress = epoch_start;
    double loss_sum = 0.0;
    for (size_t pos = 0; pos < n_train; pos += batch) {
      const size_t n = std::min(batch, n_train - pos);
      train.Gather(std::span<const uint32_t>(order).subspan(pos, n), x.data(), y.data());
      BatchView view{x.data(), y.data(), static_cast<int>(n)};
      if (transform != nullptr) {
        Rng rng(seed, "transform", step);
        view = transform->Apply(model, params, view, rng);
      }
      Rng step_rng(seed, "optimizer", step);
      const float loss = optimizer.Step(model, params, view, {}, step_rng);
      ++step;
      loss_sum += static_cast<double>(loss) * n;
      if (tty) {
        const auto now = std::chrono::steady_clock::now();
        if (Seconds(now - last_progress) >= 0.25) {
          last_progress = now;
          const size_t done = pos + n;
          std::fprintf(stderr, "\r  epoch %d/%d  %zu/%zu  loss %.4f  %.0f samples/s\033[K",
                       epoch + 1, epochs, done, n_train, loss_sum / done,
                       done / Seconds(now - epoch_start));
        }
      }
    }
    const double train_seconds = Seconds(std::chrono::steady_clock::now() - epoch_start);
    if (tty) std::fprintf(stderr, "\r\033[K");
    const EvalResult ev = EvaluateAll(model, params, test);
    std::string robust_figures;
    if (robust_plan.has_value()) {
      absl::StatusOr<RobustEvalResult> rr =
          EvaluateRobust(model, params, test, robust_rows, robust_plan->options, seed);
      if (!rr.ok()) {
        std::fprintf(stderr, "fedsim train: robust evaluation: %s\n",
                     std::string(rr.status().message()).c_str());
        return 1;
      }
      robust_figures = absl::StrFormat("  robust_acc %.4f", rr->robust_accuracy());
      if (robust_plan->options.fgsm) {
        absl::StrAppendFormat(&robust_figures, "  fgsm_acc %.4f", rr->fgsm_accuracy());
      }
    }
    const double epoch_seconds = Seconds(std::chrono::steady_clock::now() - epoch_start);
    std::printf(
        "epoch %d/%d  train_loss %.4f  test_loss %.4f  test_acc %.4f%s  time %.2fs  "
        "samples/s %.0f\n",
        epoch + 1, epochs, loss_sum / n_train, ev.loss_sum / ev.count,
        static_cast<double>(ev.correct) / ev.count, robust_figures.c_str(), epoch_seconds,
        n_train / train_seconds);
    std::fflush(stdout);
  }
  std::printf("done in %.1fs\n", Seconds(std::chrono::steady_clock::now() - run_start));
  return 0;
}

}  // namespace fedsim
