#include "algorithms/fed_au.h"

#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

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

// A FakeFleet whose participation processes follow a fixed table:
// schedule[r] is the set of clients participating in round r (none beyond).
class ScheduledFleet : public FakeFleet {
 public:
  ScheduledFleet(size_t n, std::vector<float> model) : FakeFleet(n, std::move(model)) {}
  bool ParticipatesInRound(ClientId id, uint64_t round) const override {
    return round < schedule.size() && schedule[round].count(id) > 0;
  }
  std::vector<std::set<ClientId>> schedule;
};

std::unique_ptr<Algorithm> MakeAu(const std::string& text, size_t n, size_t params) {
  config::Algorithm c;
  EXPECT_TRUE(google::protobuf::TextFormat::ParseFromString(text, &c)) << text;
  absl::StatusOr<std::unique_ptr<Algorithm>> a =
      NewFedAu(c, AlgorithmContext{.num_clients = n, .num_params = params, .seed = 1});
  EXPECT_TRUE(a.ok()) << a.status();
  return a.ok() ? *std::move(a) : nullptr;
}

// Plays one round as the engine would: Select must start exactly the
// clients in `deltas` (ascending id); their updates arrive in id order;
// then the round must be ready and is committed.
CommitResult PlayRound(Algorithm& a, ScheduledFleet& fleet,
                       const std::map<ClientId, std::vector<float>>& deltas) {
  Rng rng(1, "select", fleet.version());
  std::vector<Dispatch> ds = MustSelect(a, fleet, rng);
  std::vector<ClientId> got, want;
  for (const Dispatch& d : ds) got.push_back(d.client);
  for (const auto& [c, d] : deltas) want.push_back(c);
  EXPECT_EQ(got, want) << "round " << fleet.version();
  std::vector<TaskId> tasks = fleet.StartTasks(ds);
  for (size_t k = 0; k < tasks.size(); ++k) {
    EXPECT_FALSE(a.ReadyToCommit(fleet));
    absl::Status s = a.Accept(fleet, fleet.FinishTask(tasks[k], deltas.at(ds[k].client)));
    EXPECT_TRUE(s.ok()) << s;
  }
  EXPECT_TRUE(a.ReadyToCommit(fleet)) << "round " << fleet.version();
  absl::StatusOr<CommitResult> r = fleet.CommitTo(a);
  EXPECT_TRUE(r.ok()) << r.status();
  return r.ok() ? *r : CommitResult{};
}

std::vector<double> Weights(const CommitResult& r) {
  std::vector<double> w;
  for (const AppliedUpdate& u : r.applied) w.push_back(u.weight);
  return w;
}

std::vector<double> State(const Algorithm& a, const std::string& key) {
  AlgorithmState s;
  EXPECT_TRUE(a.SaveState(&s).ok());
  return s.scalars[key];
}

// ------------------------------------------------------------ FedAU

// 3 clients, cutoff K = 2, eta = 1, x0 = 0; d0 = (3, 0), d1 = (0, 6), d2 = (3, 3).
//   round  S_t      omega          x after             intervals recorded at commit
//   0      {0,1}    1, 1 (first)   (1, 2)              c0:1 c1:1        (c2: S=1)
//   1      {0}      1              (2, 2)              c0:1 (c1 S=1)    c2: cutoff 2
//   2      {0}      1              (3, 2)              c0:1 c1: cutoff 2 (c2 S=1)
//   3      {0,1}    1, (1+2)/2     (4, 5)              c0:1 c1:1        c2: cutoff 2
//   4      {1}      (1+2+1)/3      (4, 5 + 8/3)        c1:1 (c0 S=1, c2 S=1)
//   5      {}       -              unchanged           c0: cutoff 2     c2: cutoff 2
//   6      {0,1,2}  6/5, 5/4, 2    (7.2, 23/3 + 4.5)
// Client 2 never participates in rounds 0-5, yet its cutoff intervals give
// it omega = 2 when it first shows up.
TEST(FedAuTest, HandComputedWeightsWithCutoff) {
  auto a = MakeAu("fedau { method: FEDAU cutoff: 2 }", 3, 2);
  ScheduledFleet fleet(3, {0.0f, 0.0f});
  fleet.schedule = {{0, 1}, {0}, {0}, {0, 1}, {1}, {}, {0, 1, 2}};
  const std::vector<float> d0 = {3, 0}, d1 = {0, 6}, d2 = {3, 3};

  CommitResult r = PlayRound(*a, fleet, {{0, d0}, {1, d1}});
  EXPECT_THAT(Weights(r), ElementsAre(1.0 / 3, 1.0 / 3));
  EXPECT_THAT(fleet.current(), ElementsAre(1.0f, 2.0f));
  PlayRound(*a, fleet, {{0, d0}});
  EXPECT_THAT(fleet.current(), ElementsAre(2.0f, 2.0f));
  PlayRound(*a, fleet, {{0, d0}});
  EXPECT_THAT(fleet.current(), ElementsAre(3.0f, 2.0f));
  r = PlayRound(*a, fleet, {{0, d0}, {1, d1}});
  EXPECT_THAT(Weights(r), ElementsAre(1.0 / 3, 1.5 / 3));
  EXPECT_THAT(fleet.current(), ElementsAre(4.0f, 5.0f));
  r = PlayRound(*a, fleet, {{1, d1}});
  EXPECT_DOUBLE_EQ(Weights(r)[0], (4.0 / 3) / 3);
  EXPECT_FLOAT_EQ(fleet.current()[0], 4.0f);
  EXPECT_FLOAT_EQ(fleet.current()[1], 5.0f + 8.0f / 3);

  // Round 5: nobody participates. Ready at once, commits no change.
  EXPECT_TRUE(a->ReadyToCommit(fleet));
  const std::vector<float> before = fleet.current();
  r = PlayRound(*a, fleet, {});
  EXPECT_THAT(r.applied, IsEmpty());
  EXPECT_EQ(fleet.current(), before);
  EXPECT_EQ(fleet.version(), 6u);

  // Per-client state after 6 rounds: interval sums / counts / S_i.
  EXPECT_THAT(State(*a, "fedau.interval_sum"), ElementsAre(6, 5, 6));
  EXPECT_THAT(State(*a, "fedau.interval_count"), ElementsAre(5, 4, 3));
  EXPECT_THAT(State(*a, "fedau.since"), ElementsAre(0, 1, 0));
  EXPECT_THAT(State(*a, "fedau.round"), ElementsAre(6));

  r = PlayRound(*a, fleet, {{0, d0}, {1, d1}, {2, d2}});
  ASSERT_EQ(r.applied.size(), 3u);
  EXPECT_DOUBLE_EQ(r.applied[0].weight, 1.2 / 3);
  EXPECT_DOUBLE_EQ(r.applied[1].weight, 1.25 / 3);
  EXPECT_DOUBLE_EQ(r.applied[2].weight, 2.0 / 3);
  EXPECT_FLOAT_EQ(fleet.current()[0], 7.2f);
  EXPECT_FLOAT_EQ(fleet.current()[1], 5.0f + 8.0f / 3 + 4.5f);
}

// Without a cutoff the gaps are recorded only when the client comes back:
// client 1 in rounds 0, 3, 4 gets omega 1, 1, then (1 + 3) / 2 = 2.
TEST(FedAuTest, InfiniteCutoffRecordsWholeGaps) {
  auto a = MakeAu("fedau { server_lr: 0.5 }", 3, 1);  // default method FEDAU, cutoff 0
  ScheduledFleet fleet(3, {0.0f});
  fleet.schedule = {{0, 1}, {0}, {0}, {1}, {1}};
  PlayRound(*a, fleet, {{0, {3}}, {1, {3}}});
  PlayRound(*a, fleet, {{0, {3}}});
  PlayRound(*a, fleet, {{0, {3}}});
  CommitResult r = PlayRound(*a, fleet, {{1, {3}}});
  EXPECT_THAT(Weights(r), ElementsAre(0.5 / 3));
  r = PlayRound(*a, fleet, {{1, {3}}});
  EXPECT_THAT(Weights(r), ElementsAre(0.5 * 2 / 3));
  // x = 0.5/3 * (3+3 + 3 + 3 + 3 + 2*3) = 10.5 / 3 = 3.5
  EXPECT_FLOAT_EQ(fleet.current()[0], 3.5f);
  // Client 2 never came: no intervals, S = 5.
  EXPECT_THAT(State(*a, "fedau.interval_count"), ElementsAre(3, 3, 0));
  EXPECT_THAT(State(*a, "fedau.since"), ElementsAre(2, 0, 5));
}

// ------------------------------------------------------------ baselines

// N = 3, eta = 0.5, x0 = (1, 1). Round 0: clients 0, 1 with d0 = (2, 0),
// d1 = (4, 6); round 1: clients 1, 2 with d1' = (0, 3), d2 = (6, 0); round 2:
// nobody. p = (0.5, 0.25, 1) for known_prob.
struct BaselineCase {
  std::string method;
  std::vector<float> after0, after1, after2;
  std::vector<double> weights1;
};

class BaselineTest : public ::testing::TestWithParam<BaselineCase> {};

TEST_P(BaselineTest, TwoRoundsByHand) {
  const BaselineCase& c = GetParam();
  auto a = MakeAu("fedau { method: " + c.method + " server_lr: 0.5 }", 3, 2);
  ScheduledFleet fleet(3, {1.0f, 1.0f});
  fleet.schedule = {{0, 1}, {1, 2}};
  fleet.mutable_client(0).participation_prob = 0.5;
  fleet.mutable_client(1).participation_prob = 0.25;
  fleet.mutable_client(2).participation_prob = 1.0;
  PlayRound(*a, fleet, {{0, {2, 0}}, {1, {4, 6}}});
  EXPECT_FLOAT_EQ(fleet.current()[0], c.after0[0]);
  EXPECT_FLOAT_EQ(fleet.current()[1], c.after0[1]);
  CommitResult r = PlayRound(*a, fleet, {{1, {0, 3}}, {2, {6, 0}}});
  EXPECT_FLOAT_EQ(fleet.current()[0], c.after1[0]);
  EXPECT_FLOAT_EQ(fleet.current()[1], c.after1[1]);
  ASSERT_EQ(r.applied.size(), c.weights1.size());
  for (size_t k = 0; k < c.weights1.size(); ++k) {
    EXPECT_DOUBLE_EQ(r.applied[k].weight, c.weights1[k]);
  }
  EXPECT_THAT(r.applied[0].client, 1u);
  EXPECT_THAT(r.applied[1].client, 2u);
  // The empty round.
  EXPECT_TRUE(a->ReadyToCommit(fleet));
  r = PlayRound(*a, fleet, {});
  EXPECT_THAT(r.applied, IsEmpty());
  EXPECT_FLOAT_EQ(fleet.current()[0], c.after2[0]);
  EXPECT_FLOAT_EQ(fleet.current()[1], c.after2[1]);
}

INSTANTIATE_TEST_SUITE_P(
    Methods, BaselineTest,
    ::testing::Values(
        // x += 0.5 (d0 + d1) / 2 = (1.5, 1.5); then 0.5 (d1' + d2) / 2 = (1.5, 0.75).
        BaselineCase{
            "AVERAGE_PARTICIPATING", {2.5f, 2.5f}, {4.0f, 3.25f}, {4.0f, 3.25f}, {0.25, 0.25}},
        // x += 0.5 (d0 + d1) / 3 = (1, 1); then 0.5 (d1' + d2) / 3 = (1, 0.5).
        BaselineCase{"AVERAGE_ALL", {2.0f, 2.0f}, {3.0f, 2.5f}, {3.0f, 2.5f}, {0.5 / 3, 0.5 / 3}},
        // x += (0.5/3) (d0/0.5 + d1/0.25) = (20, 24)/6; then (0.5/3)(d1'/0.25 + d2) = (1, 2).
        BaselineCase{"KNOWN_PROB",
                     {13.0f / 3, 5.0f},
                     {16.0f / 3, 7.0f},
                     {16.0f / 3, 7.0f},
                     {0.5 / 3 / 0.25, 0.5 / 3}},
        // y = (d0, d1, 0): x += 0.5 (2, 2); y = (d0, d1', d2): x += 0.5 (8/3, 1),
        // and again in the empty round.
        BaselineCase{
            "MIFA", {2.0f, 2.0f}, {10.0f / 3, 2.5f}, {14.0f / 3, 3.0f}, {0.5 / 3, 0.5 / 3}},
        // ybar 0: x += 0.5 (3, 3); ybar = (2, 2), mean(d1' - d1, d2 - 0) = (1, -1.5):
        // x += 0.5 (3, 0.5). Empty round: no change.
        BaselineCase{"FEDVARP", {2.5f, 2.5f}, {4.0f, 2.75f}, {4.0f, 2.75f}, {0.25, 0.25}},
        // Everyone's first participation: omega = 1, as AVERAGE_ALL.
        BaselineCase{"FEDAU", {2.0f, 2.0f}, {3.0f, 2.5f}, {3.0f, 2.5f}, {0.5 / 3, 0.5 / 3}}),
    [](const ::testing::TestParamInfo<BaselineCase>& info) { return info.param.method; });

// ------------------------------------------------------------ engine protocol

TEST(FedAuTest, EmptyRoundIsReadyWithoutAnEvent) {
  auto a = MakeAu("fedau {}", 2, 1);
  ScheduledFleet fleet(2, {0.0f});
  fleet.schedule = {{}, {}, {1}};
  for (int r = 0; r < 2; ++r) {
    EXPECT_TRUE(a->ReadyToCommit(fleet));
    Rng rng(1, "select", 0);
    EXPECT_THAT(MustSelect(*a, fleet, rng), IsEmpty());
    ASSERT_TRUE(fleet.CommitTo(*a).ok());
  }
  EXPECT_FALSE(a->ReadyToCommit(fleet));  // round 2 has a participant
  Rng rng(1, "select", 1);
  std::vector<Dispatch> ds = MustSelect(*a, fleet, rng);
  ASSERT_EQ(ds.size(), 1u);
  EXPECT_EQ(ds[0].client, 1u);
  EXPECT_THAT(MustSelect(*a, fleet, rng), IsEmpty());  // a round is in progress
}

TEST(FedAuTest, BusyOrUnavailableParticipantsAreSkipped) {
  auto a = MakeAu("fedau {}", 3, 1);
  ScheduledFleet fleet(3, {0.0f});
  fleet.schedule = {{0, 1, 2}};
  fleet.mutable_client(0).available = false;
  fleet.mutable_client(2).busy = true;
  Rng rng(1, "select", 0);
  std::vector<Dispatch> ds = MustSelect(*a, fleet, rng);
  ASSERT_EQ(ds.size(), 1u);
  EXPECT_EQ(ds[0].client, 1u);
}

TEST(FedAuTest, LostAndRefusedUpdatesCountAsNonParticipation) {
  auto a = MakeAu("fedau { cutoff: 0 }", 3, 2);
  ScheduledFleet fleet(3, {0.0f, 0.0f});
  fleet.schedule = {{0, 1, 2}};
  Rng rng(1, "select", 0);
  std::vector<TaskId> t = fleet.StartTasks(MustSelect(*a, fleet, rng));
  ASSERT_EQ(t.size(), 3u);
  // Wrong size: refused, but the client is no longer awaited.
  EXPECT_EQ(a->Accept(fleet, fleet.FinishTask(t[0], {1, 2, 3})).code(),
            absl::StatusCode::kInvalidArgument);
  // Lost.
  fleet.LoseTask(t[1]);
  a->OnTaskLost(fleet, t[1], 1);
  EXPECT_FALSE(a->ReadyToCommit(fleet));
  // A second update of a client that already reported is refused.
  ClientUpdate u2 = fleet.FinishTask(t[2], {3, 3});
  ClientUpdate dup = u2;
  ASSERT_TRUE(a->Accept(fleet, std::move(u2)).ok());
  EXPECT_EQ(a->Accept(fleet, std::move(dup)).code(), absl::StatusCode::kFailedPrecondition);
  ASSERT_TRUE(a->ReadyToCommit(fleet));
  absl::StatusOr<CommitResult> r = fleet.CommitTo(*a);
  ASSERT_TRUE(r.ok());
  ASSERT_EQ(r->applied.size(), 1u);
  EXPECT_EQ(r->applied[0].client, 2u);
  EXPECT_THAT(fleet.current(), ElementsAre(1.0f, 1.0f));
  EXPECT_THAT(State(*a, "fedau.since"), ElementsAre(1, 1, 0));
  EXPECT_THAT(State(*a, "fedau.interval_count"), ElementsAre(0, 0, 1));
}

TEST(FedAuTest, StaleOrForeignUpdatesAreRefused) {
  auto a = MakeAu("fedau {}", 2, 1);
  ScheduledFleet fleet(2, {0.0f});
  fleet.schedule = {{0}};
  Rng rng(1, "select", 0);
  std::vector<TaskId> t = fleet.StartTasks(MustSelect(*a, fleet, rng));
  ASSERT_EQ(t.size(), 1u);
  ClientUpdate foreign;
  foreign.client = 1;
  foreign.delta = {1};
  EXPECT_EQ(a->Accept(fleet, foreign).code(), absl::StatusCode::kFailedPrecondition);
  ClientUpdate stale = fleet.FinishTask(t[0], {1});
  stale.base = ModelRef::Global(7);
  EXPECT_EQ(a->Accept(fleet, stale).code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_TRUE(a->ReadyToCommit(fleet));  // the refused client is not awaited
}

TEST(FedAuTest, KnownProbRefusesZeroProbability) {
  auto a = MakeAu("fedau { method: KNOWN_PROB }", 1, 1);
  ScheduledFleet fleet(1, {0.0f});
  fleet.schedule = {{0}};
  fleet.mutable_client(0).participation_prob = 0;
  Rng rng(1, "select", 0);
  std::vector<TaskId> t = fleet.StartTasks(MustSelect(*a, fleet, rng));
  absl::Status s = a->Accept(fleet, fleet.FinishTask(t[0], {1}));
  EXPECT_EQ(s.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(s.message(), HasSubstr("participation probability 0"));
}

TEST(FedAuTest, FactoryValidates) {
  auto make = [](const std::string& text, size_t n) {
    config::Algorithm c;
    EXPECT_TRUE(google::protobuf::TextFormat::ParseFromString(text, &c)) << text;
    return NewFedAu(c, AlgorithmContext{.num_clients = n, .num_params = 1}).status();
  };
  EXPECT_EQ(make("fedavg {}", 3).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(make("fedau { server_lr: 0 }", 3).message(), HasSubstr("fedau.server_lr"));
  EXPECT_THAT(make("fedau { method: METHOD_UNSPECIFIED }", 3).message(), HasSubstr("fedau.method"));
  EXPECT_EQ(make("fedau {}", 0).code(), absl::StatusCode::kInvalidArgument);
  EXPECT_TRUE(make("fedau { method: MIFA cutoff: 50 }", 3).ok());
}

// ------------------------------------------------------------ checkpoints

class CheckpointTest : public ::testing::TestWithParam<std::string> {};

// Saves mid-round (one of two updates in), loads into a fresh rule, and
// checks that both continue identically for several rounds.
TEST_P(CheckpointTest, SaveLoadMidRunRoundTrips) {
  const std::string cfg = "fedau { method: " + GetParam() + " cutoff: 2 server_lr: 0.7 }";
  auto a = MakeAu(cfg, 4, 3);
  ScheduledFleet fleet(4, {0.1f, -0.2f, 0.3f});
  fleet.schedule = {{0, 1}, {1, 2, 3}, {}, {0, 3}, {0, 1, 2, 3}, {2}, {0, 1}};
  for (ClientId c = 0; c < 4; ++c) fleet.mutable_client(c).participation_prob = 0.2 * (c + 1);
  auto delta = [](ClientId c, uint64_t round) {
    return std::vector<float>{0.5f * static_cast<float>(c + 1), -0.25f * static_cast<float>(round),
                              0.125f * static_cast<float>(c * round + 1)};
  };
  PlayRound(*a, fleet, {{0, delta(0, 0)}, {1, delta(1, 0)}});
  // Round 1: client 1 in, clients 2 and 3 out.
  Rng rng(1, "select", 9);
  std::vector<TaskId> t = fleet.StartTasks(MustSelect(*a, fleet, rng));
  ASSERT_EQ(t.size(), 3u);
  ASSERT_TRUE(a->Accept(fleet, fleet.FinishTask(t[0], delta(1, 1))).ok());

  AlgorithmState saved;
  ASSERT_TRUE(a->SaveState(&saved).ok());
  auto b = MakeAu(cfg, 4, 3);
  ASSERT_TRUE(b->LoadState(saved).ok());
  AlgorithmState again;
  ASSERT_TRUE(b->SaveState(&again).ok());
  EXPECT_EQ(again, saved);

  ScheduledFleet fork = fleet;
  auto finish = [&](Algorithm& alg, ScheduledFleet& f) {
    std::vector<std::string> log;
    EXPECT_TRUE(alg.Accept(f, f.FinishTask(t[1], delta(2, 1))).ok());
    EXPECT_TRUE(alg.Accept(f, f.FinishTask(t[2], delta(3, 1))).ok());
    absl::StatusOr<CommitResult> r = f.CommitTo(alg);
    EXPECT_TRUE(r.ok());
    for (uint64_t round = 2; round < f.schedule.size(); ++round) {
      std::map<ClientId, std::vector<float>> ds;
      for (ClientId c : f.schedule[round]) ds[c] = delta(c, round);
      CommitResult cr = PlayRound(alg, f, ds);
      for (const AppliedUpdate& u : cr.applied) log.push_back(std::to_string(u.weight));
    }
    return log;
  };
  EXPECT_EQ(finish(*a, fleet), finish(*b, fork));
  EXPECT_EQ(fleet.current(), fork.current());
  EXPECT_EQ(fleet.version(), 7u);

  AlgorithmState end_a, end_b;
  ASSERT_TRUE(a->SaveState(&end_a).ok());
  ASSERT_TRUE(b->SaveState(&end_b).ok());
  EXPECT_EQ(end_a, end_b);
}

TEST_P(CheckpointTest, RejectsStateOfAnotherMethodOrShape) {
  auto a = MakeAu("fedau { method: " + GetParam() + " }", 4, 3);
  AlgorithmState s;
  ASSERT_TRUE(a->SaveState(&s).ok());
  const std::string other = GetParam() == "MIFA" ? "FEDVARP" : "MIFA";
  EXPECT_EQ(MakeAu("fedau { method: " + other + " }", 4, 3)->LoadState(s).code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(MakeAu("fedau { method: " + GetParam() + " }", 5, 3)->LoadState(s).code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(a->LoadState(AlgorithmState{}).code(), absl::StatusCode::kInvalidArgument);
}

INSTANTIATE_TEST_SUITE_P(Methods, CheckpointTest,
                         ::testing::Values("FEDAU", "AVERAGE_PARTICIPATING", "AVERAGE_ALL",
                                           "KNOWN_PROB", "MIFA", "FEDVARP"));

}  // namespace
}  // namespace fedsim
