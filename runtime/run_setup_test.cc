#include "runtime/run_setup.h"

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <numeric>
#include <string>
#include <vector>

#include <sys/resource.h>
#include <unistd.h>

#include "config/scenario_file.h"
#include "data/synthetic.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "runtime/local_recipe.h"
#include "runtime/task_runner.h"
#include "util/sanitizers.h"

namespace fedsim {
namespace {

using ::testing::HasSubstr;

config::Scenario Synthetic(const std::vector<std::string>& overrides) {
  std::vector<std::string> all = {"algorithm.fedavg.clients_per_round=2"};
  all.insert(all.end(), overrides.begin(), overrides.end());
  auto s = ParseScenarioText(
      "num_clients: 12\n"
      "dataset { synthetic { alpha: 1 beta: 1 } }\n"
      "model { softmax {} }\n"
      "stop { max_commits: 1 }\n",
      "synthetic.textproto", all);
  EXPECT_TRUE(s.ok()) << s.status();
  return s.ok() ? *s : config::Scenario();
}

std::vector<std::vector<double>> Labels(const RunData& d) {
  absl::StatusOr<std::vector<std::vector<double>>> all = LabelDistributions(d);
  EXPECT_TRUE(all.ok()) << all.status();
  return all.ok() ? *all : std::vector<std::vector<double>>();
}

void ExpectRowsSumToOne(const RunData& d) {
  const std::vector<std::vector<double>> all = Labels(d);
  ASSERT_EQ(all.size(), d.num_clients());
  for (size_t i = 0; i < all.size(); ++i) {
    const auto& row = all[i];
    ASSERT_EQ(row.size(), 10u);
    EXPECT_NEAR(std::accumulate(row.begin(), row.end(), 0.0), 1.0, 1e-12) << "client " << i;
  }
}

// Synthetic with the natural partition generates nothing but sizes and the
// test set up front; each client's rows come from ClientTrainRows, equal to
// that client's rows in the all-at-once generator.
TEST(RunSetupTest, SyntheticNaturalPartitionIsGeneratedPerClient) {
  auto d = BuildRunData(Synthetic({}), ".");
  ASSERT_TRUE(d.ok()) << d.status();
  ASSERT_TRUE(d->generated.has_value());
  EXPECT_EQ(d->train, nullptr);
  EXPECT_TRUE(d->clients.empty());
  ASSERT_EQ(d->num_clients(), 12u);
  absl::StatusOr<FederatedData> full =
      GenerateSynthetic(d->generated->options, 12, d->generated->seed);
  ASSERT_TRUE(full.ok()) << full.status();
  for (uint32_t i = 0; i < 12; ++i) {
    EXPECT_GE(d->client_rows[i], 45u);  // floor(0.9 * (>= 50))
    ASSERT_EQ(d->client_rows[i], full->client_train[i].size());
    absl::StatusOr<ClientTrainData> rows = ClientTrainRows(*d, i);
    ASSERT_TRUE(rows.ok()) << rows.status();
    ASSERT_EQ(rows->rows.size(), d->client_rows[i]);
    const size_t n = rows->rows.size();
    std::vector<float> x(n * 60), want_x(n * 60);
    std::vector<int32_t> y(n), want_y(n);
    rows->data->Gather(rows->rows, x.data(), y.data());
    full->train.Gather(full->client_train[i], want_x.data(), want_y.data());
    EXPECT_EQ(x, want_x) << "client " << i;
    EXPECT_EQ(y, want_y) << "client " << i;
  }
  // The global test set: the union of the clients' test splits, in order.
  ASSERT_EQ(d->test->size(), full->test.size());
  std::vector<float> tx(d->test->size() * 60), want_tx(tx.size());
  std::vector<int32_t> ty(d->test->size()), want_ty(ty.size());
  d->test->GatherRange(0, d->test->size(), tx.data(), ty.data());
  full->test.GatherRange(0, full->test.size(), want_tx.data(), want_ty.data());
  EXPECT_EQ(tx, want_tx);
  EXPECT_EQ(ty, want_ty);
  EXPECT_EQ(d->model.kind, ModelConfig::Kind::kSoftmax);
  EXPECT_EQ(d->model.input_dim(), 60);
  EXPECT_EQ(d->model.num_classes, 10);
  ExpectRowsSumToOne(*d);
  // Default local training: one epoch over the client's rows.
  for (size_t i = 0; i < 12; ++i) EXPECT_EQ(d->examples_per_task[i], d->client_rows[i]);
  EXPECT_EQ(ClientTrainRows(*d, 12).status().code(), absl::StatusCode::kInvalidArgument);
}

// eval.test_limit cuts the generated test set: only the first clients' test
// splits are generated, and the rows are those of the full set.
TEST(RunSetupTest, SyntheticTestSetStopsAtTheEvaluatedRows) {
  auto all = BuildRunData(Synthetic({}), ".");
  auto cut = BuildRunData(Synthetic({"eval.test_limit=7"}), ".");
  ASSERT_TRUE(all.ok() && cut.ok()) << all.status() << cut.status();
  ASSERT_EQ(cut->test->size(), 7u);
  std::vector<float> a(7 * 60), b(7 * 60);
  std::vector<int32_t> ya(7), yb(7);
  all->test->GatherRange(0, 7, a.data(), ya.data());
  cut->test->GatherRange(0, 7, b.data(), yb.data());
  EXPECT_EQ(a, b);
  EXPECT_EQ(ya, yb);
}

// Setting up a fleet of 10^6 generated clients keeps no per-client rows:
// 4 bytes of size and 8 of examples_per_task a client, a row-id list as long
// as the largest client, and the evaluated test rows.
TEST(RunSetupTest, MillionGeneratedClientsHoldNoPerClientRows) {
  auto d = BuildRunData(Synthetic({"num_clients=1000000", "eval.test_limit=1000"}), ".");
  ASSERT_TRUE(d.ok()) << d.status();
  ASSERT_TRUE(d->generated.has_value());
  EXPECT_EQ(d->num_clients(), 1'000'000u);
  EXPECT_EQ(d->train, nullptr);
  EXPECT_TRUE(d->clients.empty());
  EXPECT_EQ(d->test->size(), 1000u);
  const uint32_t largest = *std::max_element(d->client_rows.begin(), d->client_rows.end());
  EXPECT_EQ(d->generated->row_ids.size(), largest);
  // What the fleet's rows would take if held: ~4e8 rows x 244 B = ~100 GB.
  uint64_t rows = 0;
  for (uint32_t r : d->client_rows) rows += r;
  EXPECT_GT(rows, 300'000'000u);
  // One client's data, on demand, is only its own.
  absl::StatusOr<ClientTrainData> one = ClientTrainRows(*d, 999'999);
  ASSERT_TRUE(one.ok()) << one.status();
  EXPECT_EQ(one->data->size(), d->client_rows[999'999]);
}

TEST(RunSetupTest, DeterministicAcrossCalls) {
  const config::Scenario s = Synthetic({"partition={dirichlet{alpha:0.5 min_size:5}}"});
  auto a = BuildRunData(s, ".");
  auto b = BuildRunData(s, ".");
  ASSERT_TRUE(a.ok() && b.ok()) << a.status() << b.status();
  EXPECT_EQ(a->clients, b->clients);
  EXPECT_EQ(Labels(*a), Labels(*b));
  EXPECT_EQ(a->train->labels().size(), b->train->labels().size());
  EXPECT_TRUE(
      std::equal(a->train->labels().begin(), a->train->labels().end(), b->train->labels().begin()));
  ExpectRowsSumToOne(*a);
  // Another seed gives another partition.
  config::Scenario other = s;
  other.set_seed(s.seed() + 1);
  auto c = BuildRunData(other, ".");
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_NE(a->clients, c->clients);
}

TEST(RunSetupTest, IidPartitionSizesDifferByAtMostOne) {
  auto d =
      BuildRunData(Synthetic({"partition={iid{}}", "local.steps=7", "local.batch_size=4"}), ".");
  ASSERT_TRUE(d.ok()) << d.status();
  size_t lo = SIZE_MAX, hi = 0, total = 0;
  for (const auto& c : d->clients) {
    lo = std::min(lo, c.size());
    hi = std::max(hi, c.size());
    total += c.size();
  }
  EXPECT_LE(hi - lo, 1u);
  EXPECT_EQ(total, d->train->size());
  for (uint64_t e : d->examples_per_task) EXPECT_EQ(e, 28u);  // steps * batch
  ExpectRowsSumToOne(*d);
}

// partition.label_mix reaches PartitionLabelMix with the scenario's alpha and
// partition seed: the same call gives the same split, and a client's labels
// follow a much more skewed mix at alpha 0.05 than at alpha 100.
TEST(RunSetupTest, LabelMixPartition) {
  auto a = BuildRunData(Synthetic({"partition={label_mix{alpha:0.05}}"}), ".");
  auto b = BuildRunData(Synthetic({"partition={label_mix{alpha:0.05}}"}), ".");
  auto flat = BuildRunData(Synthetic({"partition={label_mix{alpha:100}}"}), ".");
  ASSERT_TRUE(a.ok() && b.ok() && flat.ok()) << a.status() << flat.status();
  EXPECT_EQ(a->clients, b->clients);
  size_t total = 0;
  for (const auto& c : a->clients) total += c.size();
  EXPECT_EQ(total, a->train->size());
  ExpectRowsSumToOne(*a);
  auto mean_top_share = [](const RunData& d) {
    double sum = 0;
    const std::vector<std::vector<double>> all = Labels(d);
    for (const auto& row : all) sum += *std::max_element(row.begin(), row.end());
    return sum / all.size();
  };
  // Synthetic's pooled labels are themselves unbalanced, so even alpha 100
  // has a top share well above 1/10; alpha 0.05 concentrates far more.
  EXPECT_GT(mean_top_share(*a), 0.6);
  EXPECT_GT(mean_top_share(*a), mean_top_share(*flat) + 0.2);
}

TEST(RunSetupTest, DataDependentErrorsNameTheField) {
  auto d = BuildRunData(Synthetic({"partition.shards.shards_per_client=100000"}), ".");
  ASSERT_FALSE(d.ok());
  EXPECT_EQ(d.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(d.status().message()),
              HasSubstr("partition.shards.shards_per_client: 100000 shards for each of 12"));
  d = BuildRunData(Synthetic({"partition.dirichlet.min_size=1000000"}), ".");
  ASSERT_FALSE(d.ok());
  EXPECT_THAT(std::string(d.status().message()),
              HasSubstr("partition.dirichlet.min_size: 1000000 rows for each of 12 clients"));
  // Scenario validation refuses a CNN on Synthetic's vectors already; data
  // built from a scenario that skipped it still says so.
  config::Scenario cnn = Synthetic({});
  cnn.mutable_model()->mutable_cnn();
  d = BuildRunData(cnn, ".");
  ASSERT_FALSE(d.ok());
  EXPECT_THAT(std::string(d.status().message()), HasSubstr("model.cnn: a CNN needs image input"));
}

TEST(RunSetupTest, ConfigsFromProto) {
  config::LocalTraining local;
  local.set_epochs(3);
  local.set_batch_size(32);
  local.set_lr(0.02);
  local.set_momentum(0.9);
  local.set_prox_mu(0.01);
  const LocalSchedule c = ScheduleFromConfig(local);
  EXPECT_EQ(c.epochs, 3u);
  EXPECT_EQ(c.batch_size, 32u);
  auto recipe = NewLocalRecipe(local, 10);
  ASSERT_TRUE(recipe.ok()) << recipe.status();
  EXPECT_EQ(recipe->optimizer->Name(), "sgd(lr=0.02, momentum=0.9, prox_mu=0.01)");
  EXPECT_EQ(recipe->transform, nullptr);
  EXPECT_EQ(ComputeCostMultiplier(local), 1.0);
  local.mutable_sam()->set_rho(0.1);
  recipe = NewLocalRecipe(local, 10);
  ASSERT_TRUE(recipe.ok()) << recipe.status();
  EXPECT_EQ(recipe->optimizer->Name(), "sam(rho=0.1, sgd(lr=0.02, momentum=0.9, prox_mu=0.01))");
  EXPECT_EQ(recipe->optimizer->passes_per_step(), 2);
  EXPECT_EQ(ComputeCostMultiplier(local), 2.0);
  local.set_momentum(1.5);
  EXPECT_THAT(std::string(NewLocalRecipe(local, 10).status().message()),
              HasSubstr("local: sgd: momentum must be in [0, 1)"));

  config::Model model;
  model.mutable_mlp()->add_hidden(100);
  model.mutable_mlp()->add_hidden(50);
  auto m = ModelConfigFromProto(model, ExampleShape{1, 28, 28}, 10);
  ASSERT_TRUE(m.ok());
  EXPECT_EQ(m->kind, ModelConfig::Kind::kMlp);
  EXPECT_EQ(m->hidden, (std::vector<int>{100, 50}));
  EXPECT_EQ(m->input_dim(), 784);
  model.mutable_cnn()->set_kernel(3);
  m = ModelConfigFromProto(model, ExampleShape{1, 28, 28}, 10);
  ASSERT_TRUE(m.ok());
  EXPECT_EQ(m->kind, ModelConfig::Kind::kCnn);
  EXPECT_EQ(m->kernel, 3);
  EXPECT_EQ(m->conv1, 32);
}

TEST(RunSetupTest, ModelConfigCarriesTheNumericMode) {
  const config::Model model;
  auto m = ModelConfigFromProto(model, ExampleShape{1, 28, 28}, 10);
  ASSERT_TRUE(m.ok());
  EXPECT_EQ(m->numeric, ModelConfig::Numeric::kNative);  // unset = NATIVE
  config::Numeric numeric;
  numeric.set_mode(config::Numeric::REPRODUCIBLE);
  m = ModelConfigFromProto(model, ExampleShape{1, 28, 28}, 10, numeric);
  ASSERT_TRUE(m.ok());
  EXPECT_EQ(m->numeric, ModelConfig::Numeric::kReproducible);
  numeric.set_mode(config::Numeric::MODE_UNSPECIFIED);
  m = ModelConfigFromProto(model, ExampleShape{1, 28, 28}, 10, numeric);
  EXPECT_EQ(m.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(m.status().message(), HasSubstr("numeric.mode"));
  // From a scenario, through BuildRunData.
  auto d = BuildRunData(Synthetic({"numeric.mode=REPRODUCIBLE"}), ".");
  ASSERT_TRUE(d.ok()) << d.status();
  EXPECT_EQ(d->model.numeric, ModelConfig::Numeric::kReproducible);
}

TEST(RunSetupTest, FashionMnistSmall) {
  if (!std::filesystem::exists("/usr/share/datasets/fashion-mnist")) {
    GTEST_SKIP() << "dataset-fashion-mnist is not installed";
  }
  auto s = ParseScenarioText(
      "num_clients: 10\n"
      "dataset { fashion_mnist { train_limit: 2000 test_limit: 500 } }\n"
      "partition { shards { shards_per_client: 2 } }\n"
      "algorithm { fedavg { clients_per_round: 5 } }\n"
      "stop { max_commits: 1 }\n",
      "f.textproto", {});
  ASSERT_TRUE(s.ok()) << s.status();
  auto d = BuildRunData(*s, ".");
  ASSERT_TRUE(d.ok()) << d.status();
  EXPECT_EQ(d->train->size(), 2000u);
  EXPECT_EQ(d->test->size(), 500u);
  for (const auto& c : d->clients) EXPECT_EQ(c.size(), 200u);
  EXPECT_EQ(d->model.input_dim(), 784);
  EXPECT_EQ(d->model.hidden, (std::vector<int>{200, 200}));
  ExpectRowsSumToOne(*d);
}

// Without a memory budget (limits.memory_budget_mb = 0) validation lets a
// fleet of 2 x 10^9 clients through; building its data must then fail as a
// Status, not abort with an uncaught std::bad_alloc (issue 15). The address
// space is capped so that the allocation fails at once on any machine.
// Sanitizers reserve terabytes of shadow memory, so the cap cannot apply there.
TEST(RunSetupTest, RunningOutOfMemoryIsAnErrorNotAnException) {
#ifdef FEDSIM_SANITIZER_BUILD
  GTEST_SKIP() << "an address-space cap cannot work under a sanitizer";
#else
  const config::Scenario s = Synthetic(
      {"num_clients=2000000000", "limits.memory_budget_mb=0", "eval.test_limit=10"});
  ASSERT_EQ(s.num_clients(), 2'000'000'000u);
  std::ifstream statm("/proc/self/statm");
  uint64_t pages = 0;
  ASSERT_TRUE(statm >> pages);
  rlimit old;
  ASSERT_EQ(getrlimit(RLIMIT_AS, &old), 0);
  rlimit capped = old;
  capped.rlim_cur = pages * static_cast<uint64_t>(sysconf(_SC_PAGESIZE)) + (uint64_t{1} << 30);
  ASSERT_EQ(setrlimit(RLIMIT_AS, &capped), 0);
  absl::StatusOr<RunData> d = BuildRunData(s, ".");
  ASSERT_EQ(setrlimit(RLIMIT_AS, &old), 0);
  ASSERT_FALSE(d.ok());
  EXPECT_EQ(d.status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_THAT(std::string(d.status().message()),
              HasSubstr("out of memory building the data of 2000000000 clients"));
#endif
}

// The generated-client cache follows the memory budget: 1/32 of it, from
// 64 MiB up to 256 MiB.
TEST(ClientCacheBytesTest, IsAThirtySecondOfTheBudgetFrom64To256MiB) {
  constexpr size_t kMiB = size_t{1} << 20;
  EXPECT_EQ(ClientCacheBytes(8192), size_t{256'000'000});  // the default budget
  EXPECT_EQ(ClientCacheBytes(4096), size_t{128'000'000});
  EXPECT_EQ(ClientCacheBytes(1000), 64 * kMiB);  // 31.25 MB, raised to the floor
  EXPECT_EQ(ClientCacheBytes(1), 64 * kMiB);
  EXPECT_EQ(ClientCacheBytes(100'000), 256 * kMiB);
  EXPECT_EQ(ClientCacheBytes(UINT64_MAX), 256 * kMiB);  // no overflow
  EXPECT_EQ(ClientCacheBytes(0), 256 * kMiB);           // no budget
}

}  // namespace
}  // namespace fedsim
