// Defaults: declared ones by reflection, documented ones by their sections.
#include "config/defaults.h"

#include <string>
#include <vector>

#include "algorithms/registry.h"
#include "config/fleet.h"
#include "config/scenario_test_util.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace fedsim {
namespace {

using ::testing::AllOf;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::StartsWith;

TEST(ScenarioDefaultsTest, FillDefaultsShowsDefaultsAndIsIdempotent) {
  config::Scenario s;
  FillDefaults(&s);
  const std::string once = ScenarioToText(s);
  FillDefaults(&s);
  EXPECT_EQ(ScenarioToText(s), once);
  EXPECT_THAT(once, HasSubstr("fashion_mnist {\n    dir: \"/usr/share/datasets/fashion-mnist\""));
  EXPECT_THAT(once, HasSubstr("iid {\n"));
  EXPECT_THAT(once, HasSubstr("hidden: 200\n    hidden: 200"));
  EXPECT_THAT(once, HasSubstr("clients_per_round: 10"));
  EXPECT_THAT(once, HasSubstr("seconds_per_example {\n    constant: 0.001"));
  EXPECT_THAT(once, HasSubstr("always {\n"));
  EXPECT_THAT(once, HasSubstr("lr: 0.1"));
  EXPECT_THAT(once, HasSubstr("mode: VIRTUAL"));
  EXPECT_THAT(once, HasSubstr("dir: \"runs\""));
  EXPECT_THAT(once, HasSubstr("num_clients: 10"));
  EXPECT_THAT(once, HasSubstr("seed: 1"));
  EXPECT_EQ(s.name(), "scenario");
}

TEST(ScenarioDefaultsTest, SyntheticDefaultsToNaturalAndAsyncRulesGetStaleness) {
  config::Scenario s;
  s.mutable_dataset()->mutable_synthetic();
  s.mutable_algorithm()->mutable_fedasync();
  FillDefaults(&s);
  EXPECT_TRUE(s.partition().has_natural());
  EXPECT_DOUBLE_EQ(s.algorithm().fedasync().staleness().polynomial().a(), 0.5);
  EXPECT_DOUBLE_EQ(s.algorithm().fedasync().alpha(), 0.6);
}

TEST(DefaultsTest, DeclaredDefaultsByReflectionOnAnyMessage) {
  config::LocalTraining local;
  local.set_lr(0.5);
  FillDeclaredDefaults(&local);
  EXPECT_TRUE(local.has_epochs());
  EXPECT_EQ(local.epochs(), 1u);
  EXPECT_EQ(local.batch_size(), 10u);
  EXPECT_DOUBLE_EQ(local.lr(), 0.5);  // set values stay
  // A scalar member of a oneof is a choice, not a default.
  config::Distribution d;
  FillDeclaredDefaults(&d);
  EXPECT_EQ(d.kind_case(), config::Distribution::KIND_NOT_SET);
  d.mutable_lognormal();
  FillDeclaredDefaults(&d);
  EXPECT_TRUE(d.lognormal().has_sigma());
  EXPECT_DOUBLE_EQ(d.lognormal().sigma(), 1.0);
}

TEST(DefaultsTest, TheDefaultRuleComesFromTheRegistry) {
  config::Scenario s;
  FillDefaults(&s);
  EXPECT_EQ(s.algorithm().rule_case(), DefaultAlgorithm().rule);
  EXPECT_TRUE(s.has_limits());
  EXPECT_EQ(s.limits().memory_budget_mb(), 8192u);
  EXPECT_THAT(ScenarioToText(s), HasSubstr("limits {\n  memory_budget_mb: 8192\n}"));
  EXPECT_DOUBLE_EQ(s.devices().seconds_per_example().constant(), kDefaultSecondsPerExample);
}

}  // namespace
}  // namespace fedsim
