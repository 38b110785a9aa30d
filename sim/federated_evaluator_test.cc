#include "sim/federated_evaluator.h"

#include <cmath>
#include <map>
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
  absl::StatusOr<std::optional<TaskResult>> AwaitAny(absl::Time) override {
    return absl::UnimplementedError("virtual clock only");
  }
  void Cancel(TaskId) override {}
  void Shutdown() override {}

  std::map<ClientId, uint64_t> count_of;
  std::vector<TaskSpec> submitted_;

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

}  // namespace
}  // namespace fedsim
