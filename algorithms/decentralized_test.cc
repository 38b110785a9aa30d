// The decentralized rule against hand-computed rounds (expected values in
// comments).
#include <cmath>
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

std::unique_ptr<Algorithm> Make(const std::string& text, size_t clients) {
  return MakeRule(&NewDecentralized, text,
                  AlgorithmContext{.num_clients = clients, .num_params = 2, .seed = 1});
}

// Starts the rule on `fleet` (publishes every client's model 0).
std::unique_ptr<Algorithm> Started(const std::string& text, FakeFleet& fleet) {
  std::unique_ptr<Algorithm> a = Make(text, fleet.num_clients());
  if (a != nullptr) {
    absl::Status s = a->Start(fleet, fleet);
    EXPECT_TRUE(s.ok()) << s;
  }
  return a;
}

// Finishes every task in flight with delta (client + 1) * {1, -1}.
void FinishAll(Algorithm& a, FakeFleet& fleet) {
  std::vector<TaskId> ids;
  for (const auto& [id, t] : fleet.tasks()) ids.push_back(id);
  for (TaskId id : ids) {
    const float c = static_cast<float>(fleet.tasks().at(id).client + 1);
    absl::Status s = a.Accept(fleet, fleet.FinishTask(id, {c, -c}));
    ASSERT_TRUE(s.ok()) << s;
  }
}

// Three clients on a ring: every pair is linked and Metropolis-Hastings gives
// W = 1/3 everywhere, so one gossip step averages exactly.
TEST(DecentralizedTest, OneRoundTrainsFromOwnModelsThenMixes) {
  FakeFleet fleet(3, {1, 1});
  auto algo = Started("decentralized { variant: DFEDAVG topology { ring {} } }", fleet);
  ASSERT_NE(algo, nullptr);
  Rng rng(1, "select");
  std::vector<Dispatch> d = MustSelect(*algo, fleet, rng);
  ASSERT_EQ(d.size(), 3u);
  for (ClientId c = 0; c < 3; ++c) {
    EXPECT_EQ(d[c].client, c);
    EXPECT_EQ(d[c].base, ModelRef::OfClient(c, 0));
    EXPECT_EQ(fleet.model(ModelRef::OfClient(c, 0)).size(), 2u);  // published at Start
  }
  fleet.StartTasks(d);
  EXPECT_THAT(MustSelect(*algo, fleet, rng), IsEmpty());  // round in progress
  FinishAll(*algo, fleet);
  ASSERT_TRUE(algo->ReadyToCommit(fleet));  // no transfer time: no gossip timer
  EXPECT_EQ(algo->NextDeadline(), std::nullopt);
  absl::StatusOr<CommitResult> r = fleet.CommitTo(*algo);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->applied.size(), 3u);
  // y = {2,0}, {3,-1}, {4,-2}; every x_i = their mean {3, -1}.
  for (ClientId c = 0; c < 3; ++c) {
    EXPECT_THAT(algo->ClientModel(c), ElementsAre(3, -1)) << c;
    EXPECT_THAT(fleet.model(ModelRef::OfClient(c, 1)), ElementsAre(3, -1)) << c;
  }
  // The global model is the average model.
  EXPECT_THAT(fleet.current(), ElementsAre(3, -1));
  MetricValues m;
  algo->CollectMetrics(fleet, &m);
  EXPECT_EQ(m["consensus_distance"], 0.0);
  // 3 clients x 2 neighbours x 1 step x 2 floats x 4 bytes.
  EXPECT_EQ(m["round_gossip_bytes"], 48.0);
  // Round 2 starts from version 1's client models.
  d = MustSelect(*algo, fleet, rng);
  ASSERT_EQ(d.size(), 3u);
  EXPECT_EQ(d[1].base, ModelRef::OfClient(1, 1));
}

// A client that does not participate keeps its model (identity row) while
// its neighbours still average with it.
TEST(DecentralizedTest, NonParticipantKeepsItsModelAndIsStillRead) {
  FakeFleet fleet(3, {0, 0});
  fleet.mutable_client(2).available = false;
  auto algo = Started("decentralized { variant: DFEDAVG topology { ring {} } }", fleet);
  Rng rng(1, "select");
  std::vector<Dispatch> d = MustSelect(*algo, fleet, rng);
  EXPECT_THAT(DispatchedClients(d), ElementsAre(0u, 1u));
  fleet.StartTasks(d);
  FinishAll(*algo, fleet);
  ASSERT_TRUE(fleet.CommitTo(*algo).ok());
  // y = {1,-1}, {2,-2}, x_2 = {0,0}: clients 0 and 1 get the mean {1,-1};
  // client 2 keeps {0,0}.
  EXPECT_THAT(algo->ClientModel(0), ElementsAre(1, -1));
  EXPECT_THAT(algo->ClientModel(1), ElementsAre(1, -1));
  EXPECT_THAT(algo->ClientModel(2), ElementsAre(0, 0));
  // Average {2/3, -2/3}; consensus distance (2 * 2/9 * 2 + 2 * 8/9... ) / 3:
  // each coordinate of x_0, x_1 is 1/3 from the mean, x_2's 2/3.
  MetricValues m;
  algo->CollectMetrics(fleet, &m);
  EXPECT_NEAR(m["consensus_distance"], (2 * 2 * (1.0 / 9) + 2 * (4.0 / 9)) / 3, 1e-7);
  // Only the two participants receive: 2 rows x 2 links.
  EXPECT_EQ(m["round_gossip_bytes"], 4 * 2 * 4.0);
}

// MGS: Q gossip steps. On a 4-client ring with MH weights (degree 2:
// W_ii = W_i,i+-1 = 1/3) four steps of a unit impulse spread as computed here.
TEST(DecentralizedTest, MultipleGossipStepsApplyWQTimes) {
  FakeFleet fleet(4, {0, 0});
  auto algo = Started(
      "decentralized { variant: DFEDSAM_MGS gossip_steps: 4 topology { ring {} } }", fleet);
  Rng rng(1, "select");
  fleet.StartTasks(MustSelect(*algo, fleet, rng));
  FinishAll(*algo, fleet);
  ASSERT_TRUE(fleet.CommitTo(*algo).ok());
  // y_i = (i + 1) {1, -1}; z = W^4 y computed by hand in double.
  std::vector<double> z = {1, 2, 3, 4};
  for (int q = 0; q < 4; ++q) {
    std::vector<double> next(4);
    for (int i = 0; i < 4; ++i) {
      const float w = static_cast<float>(1.0 / 3);
      next[i] = static_cast<float>(double{w} * z[(i + 3) % 4] + double{w} * z[i] +
                                   double{w} * z[(i + 1) % 4]);
    }
    z = next;
  }
  for (int i = 0; i < 4; ++i) {
    EXPECT_FLOAT_EQ(algo->ClientModel(i)[0], static_cast<float>(z[i])) << i;
    EXPECT_FLOAT_EQ(algo->ClientModel(i)[1], -static_cast<float>(z[i])) << i;
  }
}

TEST(DecentralizedTest, VariantsSetTheLocalStepAndTheDecayingLearningRate) {
  struct Case {
    std::string variant;
    std::optional<uint32_t> steps;
    double momentum;
    double sam;
  };
  for (const Case& c : {Case{"DPSGD", 1u, 0.0, 0.0}, Case{"DFEDAVG", std::nullopt, 0.0, 0.0},
                        Case{"DFEDAVGM", std::nullopt, 0.8, 0.0},
                        Case{"DFEDSAM", std::nullopt, 0.8, 0.1},
                        Case{"DFEDSAM_MGS", std::nullopt, 0.8, 0.1}}) {
    SCOPED_TRACE(c.variant);
    FakeFleet fleet(3, {0, 0});
    auto algo = Started("decentralized { variant: " + c.variant +
                            " momentum: 0.8 rho: 0.1 lr_decay: 0.5 topology { ring {} } }",
                        fleet);
    Rng rng(1, "select");
    std::vector<Dispatch> d = MustSelect(*algo, fleet, rng);
    ASSERT_FALSE(d.empty());
    EXPECT_EQ(d[0].overrides.steps, c.steps);
    EXPECT_EQ(d[0].overrides.momentum, c.momentum);
    EXPECT_EQ(d[0].overrides.sam_rho, c.sam);
    EXPECT_EQ(d[0].overrides.lr_scale, 1.0);  // round 0
    fleet.StartTasks(d);
    FinishAll(*algo, fleet);
    ASSERT_TRUE(fleet.CommitTo(*algo).ok());
    d = MustSelect(*algo, fleet, rng);
    ASSERT_FALSE(d.empty());
    EXPECT_EQ(d[0].overrides.lr_scale, 0.5);  // round 1: 0.5^1
  }
}

// Gossip takes Q x the slowest active link: upload of the sender plus
// download of the receiver. The round commits at that timer.
TEST(DecentralizedTest, GossipTimeIsTheSlowestLinkTimesQ) {
  FakeFleet fleet(3, {0, 0});
  for (ClientId c = 0; c < 3; ++c) {
    fleet.mutable_client(c).upload_s = 0.5 + c;  // 0.5, 1.5, 2.5
    fleet.mutable_client(c).download_s = 0.25;
  }
  auto algo = Started(
      "decentralized { variant: DFEDSAM_MGS gossip_steps: 2 topology { ring {} } }", fleet);
  Rng rng(1, "select");
  fleet.StartTasks(MustSelect(*algo, fleet, rng));
  fleet.set_now(10);
  FinishAll(*algo, fleet);
  // Slowest link: from client 2 (2.5 up) to anyone (0.25 down) = 2.75; Q = 2.
  ASSERT_EQ(algo->NextDeadline(), 10 + 2 * 2.75);
  EXPECT_FALSE(algo->ReadyToCommit(fleet));
  ASSERT_TRUE(fleet.FireTimer(*algo, 15.5).ok());
  ASSERT_TRUE(algo->ReadyToCommit(fleet));
  ASSERT_TRUE(fleet.CommitTo(*algo).ok());
}

TEST(DecentralizedTest, ALostTaskLeavesItsClientUnchanged) {
  FakeFleet fleet(3, {0, 0});
  auto algo = Started("decentralized { variant: DFEDAVG topology { ring {} } }", fleet);
  Rng rng(1, "select");
  std::vector<TaskId> ids = fleet.StartTasks(MustSelect(*algo, fleet, rng));
  fleet.LoseTask(ids[2]);
  algo->OnTaskLost(fleet, ids[2], 2);
  ASSERT_TRUE(algo->Accept(fleet, fleet.FinishTask(ids[0], {3, 3})).ok());
  ASSERT_TRUE(algo->Accept(fleet, fleet.FinishTask(ids[1], {6, 6})).ok());
  ASSERT_TRUE(algo->ReadyToCommit(fleet));
  ASSERT_TRUE(fleet.CommitTo(*algo).ok());
  EXPECT_THAT(algo->ClientModel(0), ElementsAre(3, 3));  // mean of 3, 6, 0
  EXPECT_THAT(algo->ClientModel(2), ElementsAre(0, 0));
}

TEST(DecentralizedTest, ValidationNamesTheFieldAndTheGraphProblem) {
  config::Algorithm c;
  ASSERT_TRUE(google::protobuf::TextFormat::ParseFromString(
      "decentralized { variant: VARIANT_UNSPECIFIED momentum: 1 lr_decay: 0 "
      "topology { random_regular { degree: 5 } } }",
      &c));
  ProblemList problems;
  ValidateDecentralized(c, RuleCheckContext{.num_clients = 5}, &problems);
  std::vector<std::string> paths;
  for (const auto& p : problems.problems()) paths.push_back(p.path);
  EXPECT_THAT(paths, ::testing::IsSupersetOf({"algorithm.decentralized.variant",
                                              "algorithm.decentralized.momentum",
                                              "algorithm.decentralized.lr_decay"}));
  // degree 5 with 5 clients: the graph's own check, under the rule's path.
  bool degree = false;
  for (const auto& p : problems.problems()) {
    degree |= p.path.rfind("algorithm.decentralized.topology", 0) == 0;
  }
  EXPECT_TRUE(degree) << problems.ToStatus();
  EXPECT_THAT(std::string(NewDecentralized(c, AlgorithmContext{.num_clients = 5})
                              .status()
                              .message()),
              HasSubstr("algorithm.decentralized.variant"));
}

TEST(DecentralizedTest, NotesNameTheGraphAndTheSpectralGap) {
  config::Algorithm c;
  ASSERT_TRUE(google::protobuf::TextFormat::ParseFromString(
      "decentralized { variant: DFEDSAM topology { full {} } }", &c));
  std::vector<std::string> notes = DecentralizedNotes(c, RuleCheckContext{.num_clients = 10});
  ASSERT_EQ(notes.size(), 2u);
  EXPECT_THAT(notes[0], HasSubstr("DFEDSAM, 1 gossip step"));
  EXPECT_THAT(notes[1], HasSubstr("spectral gap 1"));
}

}  // namespace
}  // namespace fedsim
