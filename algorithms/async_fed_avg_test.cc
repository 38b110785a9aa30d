// Async FedAvg (Fraboni) against hand-computed examples.
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
using ::testing::FloatEq;
using ::testing::HasSubstr;

std::unique_ptr<Algorithm> Make(const std::string& text) { return MakeRule(&NewAsyncFedAvg, text); }

// tau = {1, 2, 4}, p = {0.5, 0.25, 0.25}. sum_j 1/tau_j = 1 + 0.5 + 0.25 = 1.75.
// WEIGHT: d = {1.75*1*0.5, 1.75*2*0.25, 1.75*4*0.25} = {0.875, 0.875, 1.75}.
// Timeline (durations = tau): t=1 client 0 {1,0}, restarts; t=2 tie between
// client 1 (dispatched at 0) {1,1} and client 0's second task {0,1}: the
// engine takes the earlier dispatch first; t=4 client 2 {1,-1}.
std::vector<float> RunTimeline(const std::string& text) {
  auto algo = Make(text);
  FakeFleet fleet(3, {0, 0});
  const double tau[] = {1, 2, 4}, p[] = {0.5, 0.25, 0.25};
  for (ClientId i = 0; i < 3; ++i) {
    fleet.mutable_client(i).expected_duration = tau[i];
    fleet.mutable_client(i).importance = p[i];
  }
  Rng rng(1, "select");
  std::vector<Dispatch> d = MustSelect(*algo, fleet, rng);
  EXPECT_THAT(DispatchedClients(d), ElementsAre(0u, 1u, 2u));
  std::vector<TaskId> task(3);
  for (const Dispatch& x : d) task[x.client] = fleet.StartTask(x.client);
  EXPECT_FALSE(algo->ReadyToCommit(fleet));

  auto arrive = [&](ClientId c, std::vector<float> delta) {
    EXPECT_TRUE(algo->Accept(fleet, fleet.FinishTask(task[c], std::move(delta))).ok());
    EXPECT_TRUE(algo->ReadyToCommit(fleet));
    EXPECT_TRUE(fleet.CommitTo(*algo).ok());
    EXPECT_FALSE(algo->ReadyToCommit(fleet));
    std::vector<Dispatch> next = MustSelect(*algo, fleet, rng);
    EXPECT_THAT(DispatchedClients(next), ElementsAre(c));  // the freed client restarts at once
    task[c] = fleet.StartTask(c);
  };
  fleet.set_now(1);
  arrive(0, {1, 0});
  fleet.set_now(2);
  arrive(1, {1, 1});
  arrive(0, {0, 1});
  fleet.set_now(4);
  arrive(2, {1, -1});
  return fleet.current();
}

TEST(AsyncFedAvgTest, WeightByDuration) {
  // x = 0.875 {1,0} + 0.875 {1,1} + 0.875 {0,1} + 1.75 {1,-1} = {3.5, 0}
  EXPECT_THAT(RunTimeline("async_fedavg { weights: WEIGHT }"), ElementsAre(3.5f, 0));
}

TEST(AsyncFedAvgTest, Identical) {
  // x = 0.5 * ({1,0} + {1,1} + {0,1} + {1,-1}) = {1.5, 0.5}
  EXPECT_THAT(RunTimeline("async_fedavg { weights: IDENTICAL server_lr: 0.5 }"),
              ElementsAre(1.5f, 0.5f));
}

TEST(AsyncFedAvgTest, WeightByDurationWithUniformWeights) {
  // p_i = 1/3: d = {1.75*1/3, 1.75*2/3, 1.75*4/3}, so
  // x = 1.75/3 ({1,0} + 2 {1,1} + {0,1} + 4 {1,-1}) = 1.75/3 {7, -1}.
  EXPECT_THAT(RunTimeline("async_fedavg { weights: WEIGHT weighting: UNIFORM }"),
              ElementsAre(FloatEq(1.75f * 7 / 3), FloatEq(-1.75f / 3)));
}

TEST(AsyncFedAvgTest, IdenticalIgnoresTheWeighting) {
  // d_i = 1 whatever p_i: x = {1,0} + {1,1} + {0,1} + {1,-1} = {3, 1}.
  EXPECT_THAT(RunTimeline("async_fedavg { weights: IDENTICAL weighting: UNIFORM }"),
              ElementsAre(3.0f, 1.0f));
  EXPECT_THAT(RunTimeline("async_fedavg { weights: IDENTICAL weighting: EXAMPLES }"),
              ElementsAre(3.0f, 1.0f));
}

TEST(AsyncFedAvgTest, ConcurrencyCapsStarts) {
  auto algo = Make("async_fedavg { concurrency: 2 }");
  FakeFleet fleet(3, {0, 0});
  Rng rng(1, "select");
  EXPECT_EQ(MustSelect(*algo, fleet, rng).size(), 2u);
}

TEST(AsyncFedAvgTest, RejectsBadParameters) {
  config::Algorithm c;
  c.mutable_async_fedavg()->set_server_lr(-1);
  EXPECT_THAT(NewAsyncFedAvg(c, {}).status().message(), HasSubstr("async_fedavg.server_lr"));
  c.mutable_async_fedavg()->set_server_lr(1);
  c.mutable_async_fedavg()->set_weighting(config::WEIGHTING_UNSPECIFIED);
  EXPECT_THAT(NewAsyncFedAvg(c, {}).status().message(),
              HasSubstr("algorithm.async_fedavg.weighting: is unspecified; use UNIFORM"));
}

}  // namespace
}  // namespace fedsim
