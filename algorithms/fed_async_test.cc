// FedAsync against a hand-computed example (expected values in comments).
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

std::unique_ptr<Algorithm> Make(const std::string& text) { return MakeRule(&NewFedAsync, text); }

TEST(FedAsyncTest, HingeStalenessMixing) {
  // alpha 0.5, hinge a=1 b=1: S(s) = 1 for s <= 1, else 1 / (s - 1 + 1) = 1/s.
  auto algo = Make(
      "fedasync { alpha: 0.5 concurrency: 3 prox_rho: 0.01 "
      "staleness { hinge { a: 1 b: 1 } } }");
  FakeFleet fleet(3, {0, 0});
  Rng rng(1, "select");
  std::vector<Dispatch> d = MustSelect(*algo, fleet, rng);
  ASSERT_EQ(d.size(), 3u);
  for (const Dispatch& x : d) EXPECT_EQ(x.overrides.prox_mu, 0.01);
  std::vector<TaskId> task(3);
  for (const Dispatch& x : d) task[x.client] = fleet.StartTask(x.client);
  EXPECT_THAT(MustSelect(*algo, fleet, rng), IsEmpty());  // at concurrency
  EXPECT_FALSE(algo->ReadyToCommit(fleet));

  // t=1: client 0, base 0, s=0, x_client {4,0}: x1 = 0.5 * {4,0} = {2, 0}.
  fleet.set_now(1);
  ASSERT_TRUE(algo->Accept(fleet, fleet.FinishTask(task[0], {4, 0})).ok());
  ASSERT_TRUE(algo->ReadyToCommit(fleet));
  absl::StatusOr<CommitResult> r = fleet.CommitTo(*algo);
  ASSERT_TRUE(r.ok());
  EXPECT_THAT(fleet.current(), ElementsAre(2, 0));
  EXPECT_EQ(r->applied[0].weight, 0.5);
  EXPECT_FALSE(algo->ReadyToCommit(fleet));
  // The freed client restarts on version 1.
  std::vector<Dispatch> again = MustSelect(*algo, fleet, rng);
  ASSERT_EQ(again.size(), 1u);
  EXPECT_EQ(again[0].client, 0u);
  const TaskId restarted = fleet.StartTask(0);

  // t=2: client 1, base 0, s=1 (S=1), x_client {0,4}: x2 = {2,0} + 0.5({0,4} - {2,0}) = {1, 2}.
  fleet.set_now(2);
  ASSERT_TRUE(algo->Accept(fleet, fleet.FinishTask(task[1], {0, 4})).ok());
  ASSERT_TRUE(fleet.CommitTo(*algo).ok());
  EXPECT_THAT(fleet.current(), ElementsAre(1, 2));
  fleet.StartTasks(MustSelect(*algo, fleet, rng));  // client 1 on version 2

  // t=3: client 2, base 0, s=2 (S=1/2, alpha_t 0.25), x_client {2,2}:
  // x3 = {1,2} + 0.25({2,2} - {1,2}) = {1.25, 2}.
  fleet.set_now(3);
  ClientUpdate u = fleet.FinishTask(task[2], {2, 2});
  EXPECT_EQ(u.staleness, 2u);
  ASSERT_TRUE(algo->Accept(fleet, u).ok());
  r = fleet.CommitTo(*algo);
  ASSERT_TRUE(r.ok());
  EXPECT_EQ(r->applied[0].weight, 0.25);
  EXPECT_THAT(fleet.current(), ElementsAre(1.25f, 2));
  fleet.StartTasks(MustSelect(*algo, fleet, rng));

  // t=4: client 0's second task, base 1 (x1 = {2,0}), s = 3 - 1 = 2 (alpha_t 0.25),
  // delta {-2,0}: x_client = {0,0}; x4 = {1.25,2} - 0.25 {1.25,2} = {0.9375, 1.5}.
  fleet.set_now(4);
  ASSERT_TRUE(algo->Accept(fleet, fleet.FinishTask(restarted, {-2, 0})).ok());
  ASSERT_TRUE(fleet.CommitTo(*algo).ok());
  EXPECT_THAT(fleet.current(), ElementsAre(0.9375f, 1.5f));
}

// The paper's Algorithm 1 counts the update being applied: with FRESH_IS_ONE an
// update with no commit since its base is scaled by S(1), not S(0).
TEST(FedAsyncTest, PaperStalenessCountShiftsByOne) {
  for (const bool paper : {false, true}) {
    SCOPED_TRACE(paper ? "FRESH_IS_ONE" : "FRESH_IS_ZERO");
    auto algo = Make(std::string("fedasync { alpha: 0.5 concurrency: 2 staleness_count: ") +
                     (paper ? "FRESH_IS_ONE" : "FRESH_IS_ZERO") +
                     " staleness { polynomial { a: 1 } } }");
    FakeFleet fleet(2, {0, 0});
    Rng rng(1, "select");
    std::vector<TaskId> task(2);
    for (const Dispatch& x : MustSelect(*algo, fleet, rng)) task[x.client] = fleet.StartTask(x.client);
    // t=1: client 0, s = 0. S(0) = 1 -> alpha_t 0.5; S(1) = 1/2 -> 0.25.
    fleet.set_now(1);
    ClientUpdate u = fleet.FinishTask(task[0], {4, 0});
    EXPECT_EQ(u.staleness, 0u);
    ASSERT_TRUE(algo->Accept(fleet, u).ok());
    absl::StatusOr<CommitResult> r = fleet.CommitTo(*algo);
    ASSERT_TRUE(r.ok());
    EXPECT_EQ(r->applied[0].weight, paper ? 0.25 : 0.5);
    EXPECT_EQ(r->applied[0].staleness, 0u);  // the engine's s is reported either way
    EXPECT_THAT(fleet.current(), paper ? ElementsAre(1, 0) : ElementsAre(2, 0));
    // t=2: client 1, s = 1. S(1) = 1/2 -> 0.25; S(2) = 1/3 -> 1/6.
    fleet.set_now(2);
    ASSERT_TRUE(algo->Accept(fleet, fleet.FinishTask(task[1], {0, 6})).ok());
    r = fleet.CommitTo(*algo);
    ASSERT_TRUE(r.ok());
    EXPECT_DOUBLE_EQ(r->applied[0].weight, paper ? 0.5 / 3 : 0.25);
  }
}

TEST(FedAsyncTest, RejectsBadParameters) {
  config::Algorithm c;
  c.mutable_fedasync()->set_alpha(0);
  EXPECT_THAT(NewFedAsync(c, {}).status().message(), HasSubstr("fedasync.alpha"));
  c.mutable_fedasync()->set_alpha(0.5);
  c.mutable_fedasync()->mutable_staleness()->mutable_hinge()->set_b(-2);
  EXPECT_THAT(NewFedAsync(c, {}).status().message(), HasSubstr("fedasync.staleness.hinge.b"));
  c.mutable_fedasync()->mutable_staleness()->mutable_hinge()->set_b(1);
  c.mutable_fedasync()->set_staleness_count(config::FedAsync::STALENESS_COUNT_UNSPECIFIED);
  EXPECT_THAT(NewFedAsync(c, {}).status().message(),
              HasSubstr("algorithm.fedasync.staleness_count: is unspecified"));
}

TEST(FedAsyncTest, RefusesWrongShape) {
  auto algo = Make("fedasync {}");
  FakeFleet fleet(1, {0, 0});
  const TaskId t = fleet.StartTask(0);
  EXPECT_EQ(algo->Accept(fleet, fleet.FinishTask(t, {1, 2, 3})).code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_FALSE(algo->ReadyToCommit(fleet));
}

}  // namespace
}  // namespace fedsim
