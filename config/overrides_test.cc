// The --set language, on scenarios and on another message type.
#include "config/overrides.h"

#include <string>
#include <vector>

#include "config/scenario_test_util.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace fedsim {
namespace {

using ::testing::AllOf;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::StartsWith;

TEST(ScenarioOverrideTest, NestedScalar) {
  auto s = Parse(kMinimal, {"local.lr=0.05", "num_clients=100", "name=sweep_1"});
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_DOUBLE_EQ(s->local().lr(), 0.05);
  EXPECT_EQ(s->num_clients(), 100u);
  EXPECT_EQ(s->name(), "sweep_1");
}

TEST(ScenarioOverrideTest, FieldInsideOneofMemberSwitchesTheRule) {
  auto s = Parse(std::string(kMinimal) + "algorithm { fedavg { clients_per_round: 5 } }",
                 {"algorithm.fedbuff.buffer_size=5"});
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_FALSE(s->algorithm().has_fedavg());
  ASSERT_TRUE(s->algorithm().has_fedbuff());
  EXPECT_EQ(s->algorithm().fedbuff().buffer_size(), 5u);
  EXPECT_EQ(s->algorithm().fedbuff().concurrency(), 20u);  // default filled in
  EXPECT_TRUE(s->algorithm().fedbuff().staleness().has_polynomial());
}

TEST(ScenarioOverrideTest, RepeatedField) {
  auto s = Parse(kMinimal, {"model.mlp.hidden=[100,50]"});
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_THAT(s->model().mlp().hidden(), ElementsAre(100, 50));
  // Absl's vector flag splits at commas; the pieces are joined back.
  s = Parse(kMinimal, {"model.mlp.hidden=[100", "50]", "local.lr=0.2"});
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_THAT(s->model().mlp().hidden(), ElementsAre(100, 50));
  EXPECT_DOUBLE_EQ(s->local().lr(), 0.2);
  s = Parse(kMinimal, {"model.mlp.hidden=64", "32"});
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_THAT(s->model().mlp().hidden(), ElementsAre(64, 32));
  s = Parse(kMinimal, {"model.mlp.hidden[0]=7"});
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_THAT(s->model().mlp().hidden(), ElementsAre(7));  // appended to an empty list
  s = Parse(kMinimal, {"model.mlp.hidden=[1,2]", "model.mlp.hidden[1]=9"});
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_THAT(s->model().mlp().hidden(), ElementsAre(1, 9));
  s = Parse(kMinimal, {"model.mlp.hidden[3]=9"});
  EXPECT_THAT(Msg(s.status()), HasSubstr("index 3 is out of range"));
}

TEST(ScenarioOverrideTest, MessageInBraces) {
  auto s = Parse(std::string(kMinimal) + "partition { shards {} }",
                 {"partition={dirichlet{alpha:0.1}}"});
  ASSERT_TRUE(s.ok()) << s.status();
  ASSERT_TRUE(s->partition().has_dirichlet());
  EXPECT_DOUBLE_EQ(s->partition().dirichlet().alpha(), 0.1);
  EXPECT_EQ(s->partition().dirichlet().min_size(), 10u);
  s = Parse(kMinimal, {"events[0]={at_s: 5 clients: [1, 2] join: true}"});
  ASSERT_TRUE(s.ok()) << s.status();
  ASSERT_EQ(s->events_size(), 1);
  EXPECT_THAT(s->events(0).clients(), ElementsAre(1, 2));
}

TEST(ScenarioOverrideTest, UnknownFieldWithDidYouMean) {
  auto s = Parse(kMinimal, {"local.lrr=0.1"});
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(Msg(s.status()),
            "--set local.lrr=0.1: no field 'lrr' in LocalTraining (did you mean 'lr'?)");
  s = Parse(kMinimal, {"algoritm.fedavg.server_lr=1"});
  EXPECT_EQ(Msg(s.status()),
            "--set algoritm.fedavg.server_lr=1: no field 'algoritm' in Scenario (did you mean "
            "'algorithm'?)");
}

TEST(ScenarioOverrideTest, BadValues) {
  auto s = Parse(kMinimal, {"num_clients=abc"});
  ASSERT_FALSE(s.ok());
  EXPECT_THAT(Msg(s.status()),
              StartsWith("--set num_clients=abc: bad value for num_clients: expected a "
                         "non-negative integer"));
  s = Parse(kMinimal, {"algorithm.fedavg.weighting=UNIFROM"});
  EXPECT_THAT(Msg(s.status()), HasSubstr("(did you mean 'UNIFORM'?)"));
  s = Parse(kMinimal, {"local.lr"});
  EXPECT_THAT(Msg(s.status()), HasSubstr("expected path.to.field=value"));
  s = Parse(kMinimal, {"local.lr.x=1"});
  EXPECT_THAT(Msg(s.status()), HasSubstr("'lr' in LocalTraining is not a message"));
  s = Parse(kMinimal, {"events.at_s=1"});
  EXPECT_THAT(Msg(s.status()), HasSubstr("'events' is repeated; give an index"));
  // Every bad override is reported.
  s = Parse(kMinimal, {"local.lrr=1", "num_clients=x"});
  EXPECT_EQ(ErrorLines(s.status()).size(), 2u);
}

TEST(ScenarioOverrideTest, SemanticErrorSaysFromSet) {
  auto s = Parse(kMinimal, {"local.lr=-2"});
  ASSERT_FALSE(s.ok());
  EXPECT_THAT(Msg(s.status()),
              StartsWith("x.textproto: local.lr (from --set): must be > 0, got -2"));
}

// The --set language works on any message type, not only Scenario.
TEST(OverridesTest, AnyMessageType) {
  config::LocalTraining local;
  SourceMap sources("l.textproto");
  ASSERT_TRUE(ApplyOverrides({"lr=0.05", "epochs=3"}, &local, &sources).ok());
  EXPECT_DOUBLE_EQ(local.lr(), 0.05);
  EXPECT_EQ(local.epochs(), 3u);
  EXPECT_EQ(sources.Describe("lr"), "l.textproto: lr (from --set)");
  EXPECT_EQ(Msg(ApplyOverride("lrr=1", &local, nullptr)),
            "--set lrr=1: no field 'lrr' in LocalTraining (did you mean 'lr'?)");

  // A message value selects a oneof member; a scalar member replaces it.
  config::Distribution d;
  ASSERT_TRUE(ApplyOverride("uniform={lo: 1 hi: 2}", &d, nullptr).ok());
  ASSERT_TRUE(d.has_uniform());
  EXPECT_DOUBLE_EQ(d.uniform().hi(), 2.0);
  ASSERT_TRUE(ApplyOverride("constant=0.5", &d, nullptr).ok());
  EXPECT_FALSE(d.has_uniform());
  EXPECT_DOUBLE_EQ(d.constant(), 0.5);
  // Repeated fields with and without brackets, and enum values with a hint.
  config::Model::Mlp mlp;
  ASSERT_TRUE(ApplyOverrides({"hidden=[3", "4]"}, &mlp, nullptr).ok());
  EXPECT_THAT(mlp.hidden(), ElementsAre(3, 4));
  config::Clock clock;
  EXPECT_THAT(Msg(ApplyOverride("mode=WAL", &clock, nullptr)), HasSubstr("(did you mean 'WALL'?)"));
}

TEST(OverridesTest, JoinOverrideFragments) {
  EXPECT_THAT(JoinOverrideFragments({"a.b=[1", "2]", "c=3", "4", "d=\"x", "y\""}),
              ElementsAre("a.b=[1,2]", "c=3,4", "d=\"x,y\""));
}

}  // namespace
}  // namespace fedsim
