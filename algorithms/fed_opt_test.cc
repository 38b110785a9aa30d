// FedOpt against hand-computed two-round examples (the arithmetic is in the
// comments). Two clients, UNIFORM weighting, server_lr 0.1, beta1 0.5,
// beta2 0.75, tau 0.5; round 1 has Delta = {2, -2}, round 2 Delta = {4, 0}.
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "algorithms/rules.h"
#include "gmock/gmock.h"
#include "google/protobuf/text_format.h"
#include "gtest/gtest.h"
#include "tests/fake_fleet.h"
#include "tests/rule_test_util.h"

namespace fedsim {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;

constexpr char kCommon[] =
    "server_lr: 0.1 beta1: 0.5 beta2: 0.75 tau: 0.5 clients_per_round: 2 weighting: UNIFORM";

std::unique_ptr<Algorithm> Make(const std::string& optimizer) {
  return MakeRule(&NewFedOpt,
                  "fedopt { optimizer: " + optimizer + " " + std::string(kCommon) + " }");
}

// One round: both clients dispatched, client c reports deltas[c].
void Round(Algorithm& algo, FakeFleet& fleet, const std::vector<std::vector<float>>& deltas) {
  Rng rng(1, "select", fleet.version());
  std::vector<Dispatch> d = MustSelect(algo, fleet, rng);
  ASSERT_EQ(d.size(), deltas.size());
  std::map<ClientId, TaskId> task;
  for (const Dispatch& x : d) task[x.client] = fleet.StartTask(x.client);
  EXPECT_THAT(MustSelect(algo, fleet, rng), IsEmpty());  // round in progress
  for (ClientId c = 0; c < deltas.size(); ++c) {
    EXPECT_FALSE(algo.ReadyToCommit(fleet));
    ASSERT_TRUE(algo.Accept(fleet, fleet.FinishTask(task.at(c), deltas[c])).ok());
  }
  ASSERT_TRUE(algo.ReadyToCommit(fleet));
  absl::StatusOr<CommitResult> r = fleet.CommitTo(algo);
  ASSERT_TRUE(r.ok()) << r.status();
  ASSERT_EQ(r->applied.size(), deltas.size());
  for (const AppliedUpdate& u : r->applied) EXPECT_DOUBLE_EQ(u.weight, 0.1 * 0.5);
  EXPECT_FALSE(algo.ReadyToCommit(fleet));
}

// Round 1: deltas {1, -2} and {3, -2}, mean Delta = {2, -2}.
// Round 2: deltas {4, 0} twice, Delta = {4, 0}.
std::vector<float> TwoRounds(const std::string& optimizer) {
  auto algo = Make(optimizer);
  FakeFleet fleet(2, {0, 0});
  Round(*algo, fleet, {{1, -2}, {3, -2}});
  Round(*algo, fleet, {{4, 0}, {4, 0}});
  return fleet.current();
}

TEST(FedOptTest, AdamTwoRounds) {
  // Round 1: m = 0.5*0 + 0.5*{2,-2} = {1,-1}; v = 0.75*0 + 0.25*{4,4} = {1,1};
  //   x = 0.1 * {1,-1} / (1 + 0.5) = {0.0666667, -0.0666667}.
  // Round 2: m = 0.5*{1,-1} + 0.5*{4,0} = {2.5,-0.5}; v = 0.75*{1,1} + 0.25*{16,0}
  //   = {4.75, 0.75}; step = 0.1 * {2.5 / (2.1794495 + 0.5), -0.5 / (0.8660254 + 0.5)}
  //   = {0.0933026, -0.0366025}; x = {0.1599693, -0.1032692}.
  std::vector<float> x = TwoRounds("ADAM");
  ASSERT_EQ(x.size(), 2u);
  EXPECT_NEAR(x[0], 0.1599693, 1e-6);
  EXPECT_NEAR(x[1], -0.1032692, 1e-6);
}

TEST(FedOptTest, YogiTwoRounds) {
  // Round 1: v = 0 - 0.25*4*sign(0 - 4) = 1 per coordinate; as Adam,
  //   x = {0.0666667, -0.0666667}.
  // Round 2: coordinate 0: v = 1 - 0.25*16*sign(1 - 16) = 5;
  //   coordinate 1: v = 1 - 0.25*0*sign(1 - 0) = 1; m = {2.5, -0.5};
  //   step = 0.1 * {2.5 / (2.2360680 + 0.5), -0.5 / (1 + 0.5)} = {0.0913722, -0.0333333};
  //   x = {0.1580389, -0.1}.
  std::vector<float> x = TwoRounds("YOGI");
  EXPECT_NEAR(x[0], 0.1580389, 1e-6);
  EXPECT_NEAR(x[1], -0.1, 1e-6);
}

TEST(FedOptTest, AdagradTwoRounds) {
  // Round 1: v = {4,4}; m = {1,-1}; x = 0.1 * {1,-1} / (2 + 0.5) = {0.04, -0.04}.
  // Round 2: v = {4+16, 4+0} = {20, 4}; m = {2.5, -0.5};
  //   step = 0.1 * {2.5 / (4.4721360 + 0.5), -0.5 / (2 + 0.5)} = {0.0502801, -0.02};
  //   x = {0.0902801, -0.06}.
  std::vector<float> x = TwoRounds("ADAGRAD");
  EXPECT_NEAR(x[0], 0.0902801, 1e-6);
  EXPECT_NEAR(x[1], -0.06, 1e-6);
}

TEST(FedOptTest, MomentumIsFedAvgM) {
  // Round 1: m = {2,-2}; x = 0.1 * m = {0.2, -0.2}.
  // Round 2: m = 0.5*{2,-2} + {4,0} = {5,-1}; x = {0.2,-0.2} + 0.1*{5,-1} = {0.7, -0.3}.
  std::vector<float> x = TwoRounds("MOMENTUM");
  EXPECT_NEAR(x[0], 0.7, 1e-6);
  EXPECT_NEAR(x[1], -0.3, 1e-6);
}

TEST(FedOptTest, ExamplesWeightingAndEmptyRound) {
  auto algo = MakeRule(&NewFedOpt,
                       "fedopt { optimizer: MOMENTUM beta1: 0.5 server_lr: 1 "
                       "clients_per_round: 2 weighting: EXAMPLES }",
                       AlgorithmContext{.num_params = 1});
  FakeFleet fleet(2, {0});
  fleet.mutable_client(0).num_examples = 1;
  fleet.mutable_client(1).num_examples = 3;
  // Delta = (1*4 + 3*8) / 4 = 7; m = 7; x = 7.
  Rng rng(1, "select");
  std::map<ClientId, TaskId> task;
  for (const Dispatch& d : MustSelect(*algo, fleet, rng)) task[d.client] = fleet.StartTask(d.client);
  ASSERT_TRUE(algo->Accept(fleet, fleet.FinishTask(task[0], {4})).ok());
  ASSERT_TRUE(algo->Accept(fleet, fleet.FinishTask(task[1], {8})).ok());
  ASSERT_TRUE(fleet.CommitTo(*algo).ok());
  EXPECT_THAT(fleet.current(), ElementsAre(7.0f));

  // A round whose tasks are all lost: no change, and momentum does not decay.
  task.clear();
  for (const Dispatch& d : MustSelect(*algo, fleet, rng)) task[d.client] = fleet.StartTask(d.client);
  ASSERT_EQ(task.size(), 2u);
  for (auto [client, id] : task) {
    fleet.LoseTask(id);
    algo->OnTaskLost(fleet, id, client);
  }
  ASSERT_TRUE(algo->ReadyToCommit(fleet));
  absl::StatusOr<CommitResult> r = fleet.CommitTo(*algo);
  ASSERT_TRUE(r.ok());
  EXPECT_THAT(r->applied, IsEmpty());
  EXPECT_THAT(fleet.current(), ElementsAre(7.0f));

  // Next round, Delta = 1: m = 0.5*7 + 1 = 4.5; x = 11.5.
  task.clear();
  for (const Dispatch& d : MustSelect(*algo, fleet, rng)) task[d.client] = fleet.StartTask(d.client);
  ASSERT_TRUE(algo->Accept(fleet, fleet.FinishTask(task[0], {1})).ok());
  ASSERT_TRUE(algo->Accept(fleet, fleet.FinishTask(task[1], {1})).ok());
  ASSERT_TRUE(fleet.CommitTo(*algo).ok());
  EXPECT_THAT(fleet.current(), ElementsAre(11.5f));
}

TEST(FedOptTest, RefusesUpdatesOutsideTheRound) {
  auto algo = Make("ADAM");
  FakeFleet fleet(3, {0, 0});
  Rng rng(1, "select");
  std::vector<Dispatch> d = MustSelect(*algo, fleet, rng);
  ASSERT_EQ(d.size(), 2u);
  std::vector<TaskId> round;
  for (const Dispatch& x : d) round.push_back(fleet.StartTask(x.client));
  // The third client is not in the round.
  ClientId outsider = 0;
  while (outsider == d[0].client || outsider == d[1].client) ++outsider;
  const TaskId stray = fleet.StartTask(outsider);
  absl::Status s = algo->Accept(fleet, fleet.FinishTask(stray, {1, 1}));
  EXPECT_EQ(s.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(s.message(), HasSubstr("is not expected in it"));
  // An update trained on version 0 arriving in the round of version 1.
  const TaskId old = fleet.StartTask(outsider);
  for (size_t k = 0; k < round.size(); ++k) {
    fleet.LoseTask(round[k]);
    algo->OnTaskLost(fleet, round[k], d[k].client);
  }
  ASSERT_TRUE(fleet.CommitTo(*algo).ok());
  ASSERT_EQ(MustSelect(*algo, fleet, rng).size(), 2u);
  s = algo->Accept(fleet, fleet.FinishTask(old, {1, 1}));
  EXPECT_EQ(s.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(s.message(), HasSubstr("late for round"));
  EXPECT_THAT(fleet.current(), ElementsAre(0.0f, 0.0f));
}

config::Algorithm Parse(const std::string& text) {
  config::Algorithm c;
  EXPECT_TRUE(google::protobuf::TextFormat::ParseFromString(text, &c)) << text;
  return c;
}

TEST(FedOptTest, DefaultsDependOnTheOptimizer) {
  config::Algorithm adam = Parse("fedopt {}");
  FillFedOptDefaults(&adam);
  EXPECT_DOUBLE_EQ(adam.fedopt().server_lr(), 0.01);
  config::Algorithm momentum = Parse("fedopt { optimizer: MOMENTUM }");
  FillFedOptDefaults(&momentum);
  EXPECT_DOUBLE_EQ(momentum.fedopt().server_lr(), 1.0);
  config::Algorithm set = Parse("fedopt { server_lr: 0.3 }");
  FillFedOptDefaults(&set);
  EXPECT_DOUBLE_EQ(set.fedopt().server_lr(), 0.3);
  // State: m and v for the adaptive optimizers, m alone for momentum.
  EXPECT_EQ(FedOptStateBytes(adam, 1000, 10), 2u * 10 * 4);
  EXPECT_EQ(FedOptStateBytes(momentum, 1000, 10), 1u * 10 * 4);
}

TEST(FedOptTest, ValidateReportsEveryProblem) {
  ProblemList p;
  ValidateFedOpt(Parse("fedopt { optimizer: OPTIMIZER_UNSPECIFIED server_lr: -1 beta1: 1 "
                       "beta2: -0.1 tau: 0 clients_per_round: 11 weighting: "
                       "WEIGHTING_UNSPECIFIED }"),
                 RuleCheckContext{.num_clients = 10}, &p);
  std::vector<std::string> paths;
  for (const ProblemList::Problem& x : p.problems()) paths.push_back(x.path);
  EXPECT_THAT(
      paths, ElementsAre("algorithm.fedopt.optimizer", "algorithm.fedopt.server_lr",
                         "algorithm.fedopt.beta1", "algorithm.fedopt.beta2", "algorithm.fedopt.tau",
                         "algorithm.fedopt.clients_per_round", "algorithm.fedopt.weighting"));
  EXPECT_THAT(p.problems()[5].message, HasSubstr("11 is outside [1, num_clients = 10]"));
  // The factory refuses the same config with the same messages.
  absl::StatusOr<std::unique_ptr<Algorithm>> a =
      NewFedOpt(Parse("fedopt { beta1: 1 }"), AlgorithmContext{.num_clients = 10, .num_params = 2});
  EXPECT_EQ(a.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(a.status().message(), HasSubstr("algorithm.fedopt.beta1: 1 is outside [0, 1)"));
}

}  // namespace
}  // namespace fedsim
