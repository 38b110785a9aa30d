// FedFix-Delta against hand-computed examples (expected values in comments).
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

std::unique_ptr<Algorithm> Make(const std::string& text) { return MakeRule(&NewFedFix, text); }

// A started rule (Start resolves the window from the fleet).
std::unique_ptr<Algorithm> Started(const std::string& text, FakeFleet& fleet) {
  std::unique_ptr<Algorithm> algo = Make(text);
  if (algo == nullptr) return nullptr;
  absl::Status s = algo->Start(fleet, fleet);
  EXPECT_TRUE(s.ok()) << s;
  return algo;
}


// tau = {1, 2, 4}, p = {0.5, 0.25, 0.25}, Delta = 2:
// d = {ceil(0.5) 0.5, ceil(1) 0.25, ceil(2) 0.25} = {0.5, 0.25, 0.5}.
FakeFleet ThreeClients() {
  FakeFleet fleet(3, {0, 0});
  const double tau[] = {1, 2, 4}, p[] = {0.5, 0.25, 0.25};
  for (ClientId i = 0; i < 3; ++i) {
    fleet.mutable_client(i).expected_duration = tau[i];
    fleet.mutable_client(i).importance = p[i];
  }
  return fleet;
}

TEST(FedFixTest, WindowsWithBoundaryTies) {
  // Delta as a fraction of the slowest client: 0.5 * 4 = 2.
  FakeFleet fleet = ThreeClients();
  auto algo = Started("fedfix { delta_fraction: 0.5 }", fleet);
  Rng rng(1, "select");
  std::vector<Dispatch> d = MustSelect(*algo, fleet, rng);
  EXPECT_THAT(DispatchedClients(d), ElementsAre(0u, 1u, 2u));  // concurrency 0 = all
  std::vector<TaskId> task(3);
  for (const Dispatch& x : d) task[x.client] = fleet.StartTask(x.client);
  EXPECT_EQ(algo->NextDeadline(), 2.0);

  fleet.set_now(1);
  ASSERT_TRUE(algo->Accept(fleet, fleet.FinishTask(task[0], {2, 0})).ok());
  EXPECT_FALSE(algo->ReadyToCommit(fleet));
  EXPECT_THAT(MustSelect(*algo, fleet, rng), IsEmpty());  // never mid-window

  // t=2: client 1 finishes exactly at the boundary, before the timer.
  fleet.set_now(2);
  ASSERT_TRUE(algo->Accept(fleet, fleet.FinishTask(task[1], {0, 4})).ok());
  EXPECT_FALSE(algo->ReadyToCommit(fleet));          // more arrivals at t=2 may follow
  EXPECT_THAT(MustSelect(*algo, fleet, rng), IsEmpty());  // ends the arrival event
  EXPECT_FALSE(algo->ReadyToCommit(fleet));          // only the timer closes the window
  ASSERT_TRUE(fleet.FireTimer(*algo, 2).ok());       // the timer event at t=2
  ASSERT_TRUE(algo->ReadyToCommit(fleet));
  absl::StatusOr<CommitResult> r = fleet.CommitTo(*algo);
  ASSERT_TRUE(r.ok());
  // x1 = 0.5 {2,0} + 0.25 {0,4} = {1, 1}
  EXPECT_THAT(fleet.current(), ElementsAre(1, 1));
  ASSERT_EQ(r->applied.size(), 2u);
  EXPECT_EQ(r->applied[0].weight, 0.5);
  EXPECT_EQ(r->applied[1].weight, 0.25);
  EXPECT_EQ(algo->NextDeadline(), 4.0);
  // Participants restart at the boundary; client 2 keeps training.
  d = MustSelect(*algo, fleet, rng);
  EXPECT_THAT(DispatchedClients(d), ElementsAre(0u, 1u));
  for (const Dispatch& x : d) task[x.client] = fleet.StartTask(x.client);

  fleet.set_now(3);
  ASSERT_TRUE(algo->Accept(fleet, fleet.FinishTask(task[0], {2, 2})).ok());
  fleet.set_now(4);
  ASSERT_TRUE(algo->Accept(fleet, fleet.FinishTask(task[1], {4, 0})).ok());
  EXPECT_FALSE(algo->ReadyToCommit(fleet));
  EXPECT_THAT(MustSelect(*algo, fleet, rng), IsEmpty());
  ClientUpdate stale = fleet.FinishTask(task[2], {4, 4});  // same time, next event
  EXPECT_EQ(stale.staleness, 1u);                          // trained on version 0
  ASSERT_TRUE(algo->Accept(fleet, stale).ok());
  EXPECT_FALSE(algo->ReadyToCommit(fleet));
  EXPECT_THAT(MustSelect(*algo, fleet, rng), IsEmpty());
  ASSERT_TRUE(fleet.FireTimer(*algo, 4).ok());
  ASSERT_TRUE(algo->ReadyToCommit(fleet));  // the timer event at t=4
  r = fleet.CommitTo(*algo);
  ASSERT_TRUE(r.ok());
  // x2 = {1,1} + 0.5 {2,2} + 0.25 {4,0} + 0.5 {4,4} = {5, 4}; no staleness discount.
  EXPECT_THAT(fleet.current(), ElementsAre(5, 4));
  ASSERT_EQ(r->applied.size(), 3u);
  EXPECT_EQ(r->applied[2].weight, 0.5);
  EXPECT_EQ(r->applied[2].staleness, 1u);
  EXPECT_THAT(DispatchedClients(MustSelect(*algo, fleet, rng)), ElementsAre(0u, 1u, 2u));
}

TEST(FedFixTest, ArrivalAtBoundaryAfterTimerGoesToNextWindowAndRestarts) {
  FakeFleet fleet = ThreeClients();
  auto algo = Started("fedfix { delta_s: 2 }", fleet);
  Rng rng(1, "select");
  std::vector<TaskId> task(3);
  for (const Dispatch& x : MustSelect(*algo, fleet, rng)) task[x.client] = fleet.StartTask(x.client);
  fleet.set_now(1);
  ASSERT_TRUE(algo->Accept(fleet, fleet.FinishTask(task[0], {2, 0})).ok());
  EXPECT_THAT(MustSelect(*algo, fleet, rng), IsEmpty());
  // t=2: the timer is processed first this time.
  ASSERT_TRUE(fleet.FireTimer(*algo, 2).ok());
  ASSERT_TRUE(algo->ReadyToCommit(fleet));
  ASSERT_TRUE(fleet.CommitTo(*algo).ok());
  EXPECT_THAT(fleet.current(), ElementsAre(1, 0));  // 0.5 {2,0}
  EXPECT_THAT(DispatchedClients(MustSelect(*algo, fleet, rng)), ElementsAre(0u));
  fleet.StartTask(0);
  // Client 1's arrival at t=2 lands in window (2, 4] and its client still
  // restarts at t=2.
  ASSERT_TRUE(algo->Accept(fleet, fleet.FinishTask(task[1], {0, 4})).ok());
  EXPECT_FALSE(algo->ReadyToCommit(fleet));
  EXPECT_THAT(DispatchedClients(MustSelect(*algo, fleet, rng)), ElementsAre(1u));
}

TEST(FedFixTest, EmptyWindowsStillCommit) {
  // One client, tau = 2.5, p = 1, Delta = 1: d = ceil(2.5) * 1 = 3.
  FakeFleet fleet(1, {1, 1});
  fleet.mutable_client(0).expected_duration = 2.5;
  fleet.mutable_client(0).importance = 1;
  auto algo = Started("fedfix { delta_s: 1 server_lr: 0.5 }", fleet);
  Rng rng(1, "select");
  const TaskId t = fleet.StartTasks(MustSelect(*algo, fleet, rng)).at(0);
  for (double boundary : {1.0, 2.0}) {
    EXPECT_EQ(algo->NextDeadline(), boundary);
    ASSERT_TRUE(fleet.FireTimer(*algo, boundary).ok());
    ASSERT_TRUE(algo->ReadyToCommit(fleet));
    absl::StatusOr<CommitResult> r = fleet.CommitTo(*algo);
    ASSERT_TRUE(r.ok());
    EXPECT_THAT(r->applied, IsEmpty());
    EXPECT_THAT(fleet.current(), ElementsAre(1, 1));    // unchanged
    EXPECT_THAT(MustSelect(*algo, fleet, rng), IsEmpty());  // client 0 still busy
  }
  EXPECT_EQ(fleet.version(), 2u);  // versions still increment
  fleet.set_now(2.5);
  ClientUpdate u = fleet.FinishTask(t, {2, -2});
  EXPECT_EQ(u.staleness, 2u);
  ASSERT_TRUE(algo->Accept(fleet, u).ok());
  EXPECT_FALSE(algo->ReadyToCommit(fleet));
  ASSERT_TRUE(fleet.FireTimer(*algo, 3).ok());
  ASSERT_TRUE(algo->ReadyToCommit(fleet));
  ASSERT_TRUE(fleet.CommitTo(*algo).ok());
  // x = {1,1} + 0.5 * 3 * {2,-2} = {4, -2}
  EXPECT_THAT(fleet.current(), ElementsAre(4, -2));
}

TEST(FedFixTest, UniformWeightingUsesOneOverN) {
  // The paper's p_i = 1/3 instead of the fleet's importance {0.5, 0.25, 0.25}:
  // tau = {1, 2, 4}, Delta = 2, so d = {1 x 1/3, 1 x 1/3, 2 x 1/3}.
  FakeFleet fleet = ThreeClients();
  auto algo = Started("fedfix { delta_s: 2 weighting: UNIFORM }", fleet);
  Rng rng(1, "select");
  std::vector<TaskId> task(3);
  for (const Dispatch& x : MustSelect(*algo, fleet, rng))
    task[x.client] = fleet.StartTask(x.client);
  fleet.set_now(1);
  ASSERT_TRUE(algo->Accept(fleet, fleet.FinishTask(task[0], {3, 0})).ok());
  fleet.set_now(2);
  ASSERT_TRUE(algo->Accept(fleet, fleet.FinishTask(task[1], {0, 3})).ok());
  ASSERT_TRUE(fleet.FireTimer(*algo, 2).ok());
  absl::StatusOr<CommitResult> r = fleet.CommitTo(*algo);
  ASSERT_TRUE(r.ok());
  // x1 = 1/3 {3,0} + 1/3 {0,3} = {1, 1}
  EXPECT_THAT(fleet.current(), ElementsAre(1, 1));
  ASSERT_EQ(r->applied.size(), 2u);
  EXPECT_DOUBLE_EQ(r->applied[0].weight, 1.0 / 3);
  EXPECT_DOUBLE_EQ(r->applied[1].weight, 1.0 / 3);
  for (const Dispatch& x : MustSelect(*algo, fleet, rng))
    task[x.client] = fleet.StartTask(x.client);
  fleet.set_now(3);
  ASSERT_TRUE(algo->Accept(fleet, fleet.FinishTask(task[0], {0, 0})).ok());
  fleet.set_now(4);
  ASSERT_TRUE(algo->Accept(fleet, fleet.FinishTask(task[1], {0, 0})).ok());
  ASSERT_TRUE(algo->Accept(fleet, fleet.FinishTask(task[2], {3, -3})).ok());
  ASSERT_TRUE(fleet.FireTimer(*algo, 4).ok());
  r = fleet.CommitTo(*algo);
  ASSERT_TRUE(r.ok());
  // x2 = {1,1} + 2/3 {3,-3} = {3, -1}
  EXPECT_THAT(fleet.current(), ElementsAre(3, -1));
  ASSERT_EQ(r->applied.size(), 3u);
  EXPECT_DOUBLE_EQ(r->applied[2].weight, 2.0 / 3);
}

TEST(FedFixTest, ConcurrencyCapsStarts) {
  FakeFleet fleet = ThreeClients();
  auto algo = Started("fedfix { delta_s: 2 concurrency: 2 }", fleet);
  Rng rng(1, "select");
  EXPECT_EQ(MustSelect(*algo, fleet, rng).size(), 2u);
}

TEST(FedFixTest, RejectsBadParameters) {
  config::Algorithm c;
  c.mutable_fedfix();
  EXPECT_THAT(NewFedFix(c, {}).status().message(), HasSubstr("fedfix: has no window"));
  c.mutable_fedfix()->set_delta_fraction(0);
  EXPECT_EQ(NewFedFix(c, {}).status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(NewFedFix(c, {}).status().message(), HasSubstr("fedfix.delta_fraction"));
  c.mutable_fedfix()->set_delta_fraction(0.5);
  c.mutable_fedfix()->set_weighting(config::WEIGHTING_UNSPECIFIED);
  EXPECT_THAT(NewFedFix(c, {}).status().message(),
              HasSubstr("algorithm.fedfix.weighting: is unspecified; use UNIFORM"));
}

TEST(FedFixTest, UnresolvableFractionFailsAtStart) {
  auto algo = Make("fedfix { delta_fraction: 0.5 }");
  FakeFleet fleet(2, {0, 0});
  fleet.mutable_client(0).expected_duration = 0;
  fleet.mutable_client(1).expected_duration = 0;
  absl::Status s = algo->Start(fleet, fleet);
  EXPECT_EQ(s.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(s.message(), HasSubstr("fedfix.delta_fraction"));
  // A rule that refused to start refuses to select too.
  Rng rng(1, "select");
  EXPECT_EQ(algo->Select(fleet, rng).status().code(), absl::StatusCode::kFailedPrecondition);
}

}  // namespace
}  // namespace fedsim
