// FedBuff against hand-computed examples (expected values in comments).
// Default staleness 1/sqrt(1+s): S(0) = 1, S(3) = 1/2, S(8) = 1/3.
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

std::unique_ptr<Algorithm> Make(const std::string& text) { return MakeRule(&NewFedBuff, text); }

ClientUpdate Update(TaskId task, ClientId client, uint64_t staleness, std::vector<float> delta,
                    uint64_t n = 1) {
  return TestUpdate(task, client, staleness, std::move(delta), n);
}

TEST(FedBuffTest, StalenessScaledUniformCommit) {
  auto algo = Make("fedbuff { buffer_size: 2 concurrency: 3 }");
  FakeFleet fleet(3, {0, 0});
  fleet.set_version(3);
  EXPECT_FALSE(algo->ReadyToCommit(fleet));
  ASSERT_TRUE(algo->Accept(fleet, Update(1, 0, 0, {2, 0})).ok());
  EXPECT_FALSE(algo->ReadyToCommit(fleet));
  ASSERT_TRUE(algo->Accept(fleet, Update(2, 1, 3, {0, 4})).ok());
  ASSERT_TRUE(algo->ReadyToCommit(fleet));
  absl::StatusOr<CommitResult> r = fleet.CommitTo(*algo);
  ASSERT_TRUE(r.ok());
  // buf = 1*{2,0} + 0.5*{0,4} = {2,2}; x += buf / K = {1, 1}
  EXPECT_THAT(fleet.current(), ElementsAre(1, 1));
  ASSERT_EQ(r->applied.size(), 2u);
  EXPECT_EQ(r->applied[0].weight, 0.5);   // 1 * 1 / 2
  EXPECT_EQ(r->applied[1].weight, 0.25);  // 0.5 * 1 / 2
  EXPECT_EQ(r->applied[1].staleness, 3u);
  EXPECT_FALSE(algo->ReadyToCommit(fleet));
}

TEST(FedBuffTest, ExamplesWeighting) {
  auto algo = Make("fedbuff { buffer_size: 2 concurrency: 2 server_lr: 0.5 weighting: EXAMPLES }");
  FakeFleet fleet(2, {0, 0});
  ASSERT_TRUE(algo->Accept(fleet, Update(1, 0, 0, {4, 0}, /*n=*/1)).ok());
  ASSERT_TRUE(algo->Accept(fleet, Update(2, 1, 3, {0, 4}, /*n=*/3)).ok());
  ASSERT_TRUE(fleet.CommitTo(*algo).ok());
  // buf = 1*1*{4,0} + 3*0.5*{0,4} = {4, 6}; x += 0.5 * buf / (1 + 3) = {0.5, 0.75}
  EXPECT_THAT(fleet.current(), ElementsAre(0.5f, 0.75f));
}

TEST(FedBuffTest, MaxStalenessDropsAndEndFlush) {
  auto algo = Make("fedbuff { buffer_size: 3 concurrency: 4 max_staleness: 2 }");
  FakeFleet fleet(4, {0, 0});
  ASSERT_TRUE(algo->Accept(fleet, Update(1, 0, 0, {3, 0})).ok());
  absl::Status dropped = algo->Accept(fleet, Update(2, 1, 3, {90, 90}));  // s = 3 > 2
  EXPECT_EQ(dropped.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(dropped.message(), HasSubstr("too stale"));
  // s = 2 is allowed: S(2) = 1/sqrt(3).
  ASSERT_TRUE(algo->Accept(fleet, Update(3, 2, 2, {0, 3})).ok());
  EXPECT_FALSE(algo->ReadyToCommit(fleet));  // k = 2 < K = 3
  absl::StatusOr<std::optional<CommitResult>> r = fleet.FinishTo(*algo);
  ASSERT_TRUE(r.ok());
  ASSERT_TRUE(r->has_value());
  EXPECT_EQ((*r)->applied.size(), 2u);
  // Mean over the k = 2 there: ({3,0} + {0, 3/sqrt(3)}) / 2 = {1.5, sqrt(3)/2}
  EXPECT_EQ(fleet.current()[0], 1.5f);
  EXPECT_NEAR(fleet.current()[1], 0.8660254, 1e-6);
  EXPECT_EQ(fleet.version(), 1u);
}

TEST(FedBuffTest, NoFlushWhenDisabled) {
  auto algo = Make("fedbuff { buffer_size: 3 concurrency: 3 flush_at_end: false }");
  FakeFleet fleet(3, {0, 0});
  ASSERT_TRUE(algo->Accept(fleet, Update(1, 0, 0, {3, 0})).ok());
  absl::StatusOr<std::optional<CommitResult>> r = fleet.FinishTo(*algo);
  ASSERT_TRUE(r.ok());
  EXPECT_FALSE(r->has_value());
  EXPECT_THAT(fleet.current(), ElementsAre(0, 0));
}

TEST(FedBuffTest, ServerMomentum) {
  auto algo = Make(
      "fedbuff { buffer_size: 1 concurrency: 1 server_momentum: 0.5 "
      "staleness { constant {} } }");
  FakeFleet fleet(1, {0, 0});
  ASSERT_TRUE(algo->Accept(fleet, Update(1, 0, 0, {1, 0})).ok());
  ASSERT_TRUE(fleet.CommitTo(*algo).ok());
  EXPECT_THAT(fleet.current(), ElementsAre(1, 0));  // m = {1,0}
  ASSERT_TRUE(algo->Accept(fleet, Update(2, 0, 0, {0, 2})).ok());
  ASSERT_TRUE(fleet.CommitTo(*algo).ok());
  // m = 0.5 {1,0} + {0,2} = {0.5, 2}; x = {1.5, 2}
  EXPECT_THAT(fleet.current(), ElementsAre(1.5f, 2));
}

TEST(FedBuffTest, TopsUpToConcurrency) {
  auto algo = Make("fedbuff { buffer_size: 2 concurrency: 3 }");
  FakeFleet fleet(5, {0, 0});
  Rng rng(3, "select");
  std::vector<Dispatch> d = MustSelect(*algo, fleet, rng);
  EXPECT_EQ(d.size(), 3u);
  std::vector<TaskId> tasks = fleet.StartTasks(d);
  EXPECT_TRUE(MustSelect(*algo, fleet, rng).empty());
  fleet.FinishTask(tasks[0], {0, 0});
  EXPECT_EQ(MustSelect(*algo, fleet, rng).size(), 1u);
}

TEST(FedBuffTest, RejectsBadParameters) {
  config::Algorithm c;
  c.mutable_fedbuff()->set_buffer_size(0);
  absl::StatusOr<std::unique_ptr<Algorithm>> a = NewFedBuff(c, {});
  EXPECT_EQ(a.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(a.status().message(), HasSubstr("fedbuff.buffer_size: must be >= 1"));
  c.mutable_fedbuff()->set_buffer_size(30);  // > concurrency 20
  EXPECT_THAT(NewFedBuff(c, {}).status().message(),
              HasSubstr("fedbuff.buffer_size: 30 is larger than concurrency 20"));
  c.mutable_fedbuff()->set_buffer_size(10);
  c.mutable_fedbuff()->set_server_momentum(1);
  EXPECT_THAT(NewFedBuff(c, {}).status().message(), HasSubstr("fedbuff.server_momentum"));
}

}  // namespace
}  // namespace fedsim
