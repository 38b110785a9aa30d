#include "sim/federated_evaluator.h"

#include <cmath>
#include <map>
#include <optional>
#include <set>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace fedsim {
namespace {

using ::testing::HasSubstr;

// Answers evaluation tasks from the store's copy of the model: client c
// scores `count_of[c]` examples, (c + 1) of them right, loss sum params[0].
class FakeEvalTransport : public Transport {
 public:
  explicit FakeEvalTransport(ModelStore* store) : store_(store) {}
  void Submit(const TaskSpec& task) override { submitted_.push_back(task); }
  absl::StatusOr<TaskResult> Await(TaskId id) override {
    for (const TaskSpec& t : submitted_) {
      if (t.id != id) continue;
      EXPECT_EQ(t.kind, TaskKind::kEvaluate);
      ModelStore::Params model = store_->Get(t.base);
      EXPECT_NE(model, nullptr) << "the evaluated model must be fetchable";
      TaskResult r;
      r.id = id;
      r.client = t.client;
      r.metrics[kEvalCount] = static_cast<double>(count_of[t.client]);
      r.metrics[kEvalCorrect] = t.client + 1.0;
      r.metrics[kEvalLossSum] = model != nullptr ? (*model)[0] : 0;
      return r;
    }
    return absl::NotFoundError("never submitted");
  }
  absl::StatusOr<std::optional<TaskResult>> AwaitUntil(TaskId id, absl::Time deadline) override {
    deadlines_.push_back(deadline);
    for (const TaskSpec& t : submitted_) {
      if (t.id == id && silent.count(t.client) > 0) return std::optional<TaskResult>();
    }
    return Transport::AwaitUntil(id, deadline);
  }
  absl::StatusOr<std::optional<TaskResult>> AwaitAny(absl::Time) override {
    return absl::UnimplementedError("virtual clock only");
  }
  std::optional<std::vector<bool>> ConnectedClients() const override { return connected; }
  void Cancel(TaskId id) override { cancelled_.push_back(id); }
  void Shutdown() override {}

  std::map<ClientId, uint64_t> count_of;
  std::optional<std::vector<bool>> connected;  // nullopt: a simulation
  std::set<ClientId> silent;                   // never answer in time
  std::vector<TaskSpec> submitted_;
  std::vector<absl::Time> deadlines_;
  std::vector<TaskId> cancelled_;

 private:
  ModelStore* store_;
};

class ConstCentral : public EvaluatorInterface {
 public:
  std::vector<std::string> ExtraMetricNames() const override { return {"robust_accuracy"}; }
  MetricValues Evaluate(std::span<const float>) override {
    return {{"test_loss", 0.5}, {"test_accuracy", 0.25}, {"robust_accuracy", 0.125}};
  }
};

TEST(FederatedEvaluatorTest, CombinesTheClientsFiguresWeightedByTheirExamples) {
  ModelStore store;
  FakeEvalTransport transport(&store);
  transport.count_of = {{1, 4}, {3, 16}};
  // Client 2 has no test split: it is not asked.
  FederatedEvaluator eval(&transport, &store, {{3, 16}, {2, 0}, {1, 4}}, nullptr);
  EXPECT_EQ(eval.ExtraMetricNames(),
            (std::vector<std::string>{"fed_loss", "fed_accuracy", "fed_acc_min", "fed_acc_max",
                                      "fed_acc_std", "fed_clients"}));
  const std::vector<float> params = {6.0f, 1.0f};
  MetricValues v = eval.Evaluate(params);
  ASSERT_EQ(transport.submitted_.size(), 2u);
  EXPECT_EQ(transport.submitted_[0].client, 1u);  // in client order
  EXPECT_GE(transport.submitted_[0].id, kFirstEvalTaskId);
  EXPECT_EQ(store.size(), 0u);  // released after
  EXPECT_DOUBLE_EQ(v["fed_accuracy"], (2.0 + 4.0) / 20.0);
  EXPECT_DOUBLE_EQ(v["fed_loss"], 12.0 / 20.0);
  EXPECT_DOUBLE_EQ(v["fed_acc_min"], 0.25);  // client 3: 4 of 16
  EXPECT_DOUBLE_EQ(v["fed_acc_max"], 0.5);   // client 1: 2 of 4
  EXPECT_DOUBLE_EQ(v["fed_acc_std"], 0.125);
  EXPECT_DOUBLE_EQ(v["fed_clients"], 2.0);
  // No central test set: the test figures are the federated ones.
  EXPECT_DOUBLE_EQ(v["test_accuracy"], v["fed_accuracy"]);
  EXPECT_DOUBLE_EQ(v["test_loss"], v["fed_loss"]);
  EXPECT_DOUBLE_EQ(eval.Accuracy(params), 0.3);
  EXPECT_TRUE(eval.last_error().ok());
}

TEST(FederatedEvaluatorTest, KeepsTheCentralFiguresAndAddsTheFederatedOnes) {
  ModelStore store;
  FakeEvalTransport transport(&store);
  transport.count_of = {{0, 2}, {1, 4}};
  ConstCentral central;
  FederatedEvaluator eval(&transport, &store, {{0, 2}, {1, 4}}, &central);
  EXPECT_EQ(eval.ExtraMetricNames().front(), "robust_accuracy");
  MetricValues v = eval.Evaluate(std::vector<float>{1.0f});
  EXPECT_DOUBLE_EQ(v["test_accuracy"], 0.25);
  EXPECT_DOUBLE_EQ(v["robust_accuracy"], 0.125);
  EXPECT_DOUBLE_EQ(v["fed_accuracy"], 3.0 / 6.0);
  EXPECT_DOUBLE_EQ(v["fed_acc_min"], 0.5);
  EXPECT_DOUBLE_EQ(v["fed_acc_max"], 0.5);
  EXPECT_DOUBLE_EQ(eval.Accuracy(std::vector<float>{1.0f}), 0.25);
}

TEST(FederatedEvaluatorTest, AClientReportingAnotherCountMakesTheFiguresNaN) {
  ModelStore store;
  FakeEvalTransport transport(&store);
  transport.count_of = {{0, 5}};  // the list says 6
  FederatedEvaluator eval(&transport, &store, {{0, 6}}, nullptr);
  MetricValues v = eval.Evaluate(std::vector<float>{1.0f});
  EXPECT_TRUE(std::isnan(v["fed_accuracy"]));
  EXPECT_TRUE(std::isnan(v["test_accuracy"]));
  EXPECT_THAT(eval.last_error().message(), HasSubstr("evaluated 5 test examples"));
}

TEST(FederatedEvaluatorTest, VirtualClockAsksEveryClientAndWaitsForAll) {
  ModelStore store;
  FakeEvalTransport transport(&store);
  transport.count_of = {{0, 10}, {1, 10}};
  transport.connected = std::vector<bool>{true, false};  // ignored on the virtual clock
  FederatedEvaluator eval(&transport, &store, {{0, 10}, {1, 10}}, nullptr);
  MetricValues v = eval.Evaluate(std::vector<float>{1.0f});
  EXPECT_EQ(transport.submitted_.size(), 2u);
  for (absl::Time d : transport.deadlines_) EXPECT_EQ(d, absl::InfiniteFuture());
  EXPECT_DOUBLE_EQ(v["fed_clients"], 2.0);
}

TEST(FederatedEvaluatorTest, WallClockAsksTheConnectedAndLeavesOutTheLate) {
  ModelStore store;
  FakeEvalTransport transport(&store);
  transport.count_of = {{0, 10}, {1, 10}, {2, 30}, {3, 10}};
  transport.connected = std::vector<bool>{true, false, true, true};
  transport.silent = {3};
  FakeClock clock(absl::FromUnixSeconds(1000));
  FederatedEvalOptions options;
  options.wall_clock = true;
  options.answer_timeout = absl::Seconds(5);
  options.clock = &clock;
  FederatedEvaluator eval(&transport, &store, {{0, 10}, {1, 10}, {2, 30}, {3, 10}}, nullptr,
                          options);
  MetricValues v = eval.Evaluate(std::vector<float>{2.0f});
  // Client 1 is away: not asked. Client 3 did not answer in time: cancelled.
  ASSERT_EQ(transport.submitted_.size(), 3u);
  EXPECT_EQ(transport.submitted_[1].client, 2u);
  ASSERT_EQ(transport.cancelled_.size(), 1u);
  EXPECT_EQ(transport.cancelled_[0], transport.submitted_[2].id);
  for (absl::Time d : transport.deadlines_) EXPECT_EQ(d, clock.Now() + absl::Seconds(5));
  EXPECT_DOUBLE_EQ(v["fed_clients"], 2.0);
  EXPECT_DOUBLE_EQ(v["fed_accuracy"], (1.0 + 3.0) / 40.0);  // clients 0 and 2
  EXPECT_TRUE(eval.last_error().ok());
}

}  // namespace
}  // namespace fedsim
