#include "runtime/run_setup.h"

#include <algorithm>
#include <filesystem>
#include <numeric>
#include <string>
#include <vector>

#include "config/scenario_file.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "runtime/local_recipe.h"

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

void ExpectRowsSumToOne(const RunData& d) {
  for (size_t i = 0; i < d.label_distribution.size(); ++i) {
    const auto& row = d.label_distribution[i];
    ASSERT_EQ(row.size(), 10u);
    EXPECT_NEAR(std::accumulate(row.begin(), row.end(), 0.0), 1.0, 1e-12) << "client " << i;
  }
}

TEST(RunSetupTest, SyntheticNaturalPartition) {
  auto d = BuildRunData(Synthetic({}), ".");
  ASSERT_TRUE(d.ok()) << d.status();
  ASSERT_EQ(d->clients.size(), 12u);
  size_t total = 0;
  for (const auto& c : d->clients) {
    EXPECT_GE(c.size(), 45u);  // floor(0.9 * (>= 50))
    total += c.size();
  }
  EXPECT_EQ(total, d->train->size());  // the natural split covers every row
  EXPECT_GT(d->test->size(), 0u);
  EXPECT_EQ(d->model.kind, ModelConfig::Kind::kSoftmax);
  EXPECT_EQ(d->model.input_dim(), 60);
  EXPECT_EQ(d->model.num_classes, 10);
  ExpectRowsSumToOne(*d);
  // Default local training: one epoch over the client's rows.
  for (size_t i = 0; i < 12; ++i) EXPECT_EQ(d->examples_per_task[i], d->clients[i].size());
}

TEST(RunSetupTest, DeterministicAcrossCalls) {
  const config::Scenario s = Synthetic({"partition={dirichlet{alpha:0.5 min_size:5}}"});
  auto a = BuildRunData(s, ".");
  auto b = BuildRunData(s, ".");
  ASSERT_TRUE(a.ok() && b.ok()) << a.status() << b.status();
  EXPECT_EQ(a->clients, b->clients);
  EXPECT_EQ(a->label_distribution, b->label_distribution);
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
    for (const auto& row : d.label_distribution) sum += *std::max_element(row.begin(), row.end());
    return sum / d.label_distribution.size();
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

}  // namespace
}  // namespace fedsim
