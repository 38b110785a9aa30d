#include "algorithms/round_roster.h"

#include <string>
#include <vector>

#include "algorithms/rule_util.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace fedsim {
namespace {

using ::testing::HasSubstr;

std::vector<Dispatch> Cohort(std::vector<ClientId> clients) {
  std::vector<Dispatch> out;
  for (ClientId c : clients) {
    Dispatch d;
    d.client = c;
    out.push_back(d);
  }
  return out;
}

ClientUpdate From(ClientId client, Version version) {
  ClientUpdate u;
  u.task_id = 100 + client;
  u.client = client;
  u.base = ModelRef::Global(version);
  return u;
}

TEST(RoundRosterTest, WaitsForEachClientOfTheCohortOnce) {
  RoundRoster roster;
  roster.Begin(4, Cohort({9, 2, 5}));
  EXPECT_TRUE(roster.active());
  EXPECT_EQ(roster.version(), 4u);
  EXPECT_TRUE(roster.Admit(From(5, 4)).ok());
  EXPECT_TRUE(roster.Admit(From(9, 4)).ok());
  EXPECT_FALSE(roster.all_reported());
  // A second report of a client is refused and changes nothing.
  const absl::Status again = roster.Admit(From(9, 4));
  EXPECT_EQ(again.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(again.message(), HasSubstr("late for round: client 9 is not expected in it"));
  EXPECT_TRUE(roster.Admit(From(2, 4)).ok());
  EXPECT_TRUE(roster.all_reported());
}

TEST(RoundRosterTest, RefusesOtherVersionsAndOtherClientsWithoutChange) {
  RoundRoster roster;
  const absl::Status none = roster.Admit(From(1, 0));
  EXPECT_EQ(none.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(none.message(), HasSubstr("the round in progress is none"));

  roster.Begin(7, Cohort({1, 3}));
  const absl::Status stale = roster.Admit(From(1, 6));
  EXPECT_EQ(stale.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(stale.message(),
              HasSubstr("late for round: task 101 trained on version 6, the round in progress is "
                        "on version 7"));
  EXPECT_THAT(roster.Admit(From(2, 7)).message(), HasSubstr("client 2 is not expected"));
  // Client 1 is still outstanding after its stale report.
  EXPECT_TRUE(roster.Admit(From(1, 7)).ok());
  EXPECT_FALSE(roster.all_reported());

  roster.End();
  EXPECT_FALSE(roster.active());
  EXPECT_TRUE(roster.all_reported());
  EXPECT_THAT(roster.Admit(From(3, 7)).message(), HasSubstr("the round in progress is none"));
}

TEST(RoundRosterTest, AForgottenClientNoLongerHoldsTheRoundUp) {
  RoundRoster roster;
  roster.Begin(1, Cohort({4, 8}));
  roster.Forget(8);
  roster.Forget(6);  // never dispatched: nothing to do
  EXPECT_FALSE(roster.all_reported());
  EXPECT_THAT(roster.Admit(From(8, 1)).message(), HasSubstr("client 8 is not expected"));
  EXPECT_TRUE(roster.Admit(From(4, 1)).ok());
  EXPECT_TRUE(roster.all_reported());
}

TEST(RoundRosterTest, ARoundComesBackFromACheckpoint) {
  RoundRoster roster;
  roster.Begin(12, Cohort({30, 10, 20}));
  ASSERT_TRUE(roster.Admit(From(20, 12)).ok());
  AlgorithmState state;
  roster.Save(&state, "rule");

  RoundRoster back;
  ASSERT_TRUE(back.Load(state, "rule").ok());
  EXPECT_TRUE(back.active());
  EXPECT_EQ(back.version(), 12u);
  EXPECT_THAT(back.Admit(From(20, 12)).message(), HasSubstr("client 20 is not expected"));
  EXPECT_TRUE(back.Admit(From(30, 12)).ok());
  EXPECT_TRUE(back.Admit(From(10, 12)).ok());
  EXPECT_TRUE(back.all_reported());
  // Another rule's keys are not this one's.
  EXPECT_EQ(RoundRoster().Load(state, "other").code(), absl::StatusCode::kInvalidArgument);
}

TEST(RoundRosterTest, ABadCheckpointIsRefusedAndChangesNothing) {
  RoundRoster good;
  good.Begin(3, Cohort({1, 2}));
  AlgorithmState base;
  good.Save(&base, "rule");

  struct Case {
    const char* what;
    const char* key;
    std::vector<double> values;
    const char* message;
  };
  const Case cases[] = {
      {"flag 2", "rule.round_active", {2}, "inconsistent round state"},
      {"descending", "rule.outstanding", {5, 4}, "not ascending"},
      {"twice", "rule.outstanding", {4, 4}, "not ascending"},
      {"fraction", "rule.outstanding", {1.5}, "bad client id"},
      {"negative", "rule.outstanding", {-1}, "bad client id"},
      {"too large", "rule.outstanding", {5e9}, "bad client id"},
  };
  for (const Case& c : cases) {
    AlgorithmState bad = base;
    if (std::string(c.key) == "rule.outstanding") {
      PutScalars(&bad, c.key, c.values);
    } else {
      PutScalar(&bad, c.key, c.values[0]);
    }
    RoundRoster roster = good;
    const absl::Status s = roster.Load(bad, "rule");
    EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument) << c.what;
    EXPECT_THAT(s.message(), HasSubstr(c.message)) << c.what;
    EXPECT_THAT(s.message(), HasSubstr("rule")) << c.what;
    // Unchanged: still waiting for clients 1 and 2 on version 3.
    EXPECT_TRUE(roster.Admit(From(1, 3)).ok()) << c.what;
    EXPECT_TRUE(roster.Admit(From(2, 3)).ok()) << c.what;
  }
}

}  // namespace
}  // namespace fedsim
