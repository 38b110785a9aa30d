// Adversarial local training and robust evaluation under every registered
// rule (issue 10): adversarial training is part of the task's recipe, not of
// the rule, so each rule in RegisteredAlgorithms() must run with it, train
// other parameters than without it, and report robust_accuracy at every
// evaluation. In-process runs on tiny synthetic data; the worker-process
// path is covered by tests/fat_e2e_test.cc.
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

#include "absl/strings/str_cat.h"
#include "algorithms/registry.h"
#include "config/scenario_file.h"
#include "gtest/gtest.h"
#include "sim/runner.h"

namespace fedsim {
namespace {

// Collects the metrics columns and the evaluation rows.
class Rows : public RunObserver {
 public:
  void OnStart(const std::vector<std::string>& columns) override { columns_ = columns; }
  void OnEvaluation(const MetricsRow& row) override { rows_.push_back(row); }
  const std::vector<std::string>& columns() const { return columns_; }
  const std::vector<MetricsRow>& rows() const { return rows_; }

 private:
  std::vector<std::string> columns_;
  std::vector<MetricsRow> rows_;
};

struct Outcome {
  std::string hash;
  Rows rows;
};

// Synthetic features are unbounded: the attacks' valid range is all reals.
constexpr char kAdversarial[] =
    "local { steps: 3 batch_size: 8 lr: 0.05 "
    "adversarial { eps: 0.3 step_size: 0.1 steps: 2 clip_min: -inf clip_max: inf } }";
constexpr char kClean[] = "local { steps: 3 batch_size: 8 lr: 0.05 }";

// The fields a rule cannot default (every other rule runs on its defaults).
std::string RequiredFields(std::string_view rule) {
  if (rule == "fedfix") return "delta_fraction: 0.5";
  return "";
}

void RunRule(const AlgorithmEntry& rule, const std::string& local, Outcome* out) {
  const std::string text = absl::StrCat(
      "name: \"fat_rules_", std::string(rule.name),
      "\" dataset { synthetic { examples_per_client: 30 } } partition { natural {} } "
      "model { softmax {} } num_clients: 20 algorithm { ",
      std::string(rule.name), " { ", RequiredFields(rule.name),
      " } } stop { max_commits: 3 } "
      "eval { every_commits: 1 client_sample: 2 robust { eps: 0.3 step_size: 0.1 steps: 3 "
      "examples: 50 fgsm: true clip_min: -inf clip_max: inf } } ",
      local);
  absl::StatusOr<config::Scenario> s = ParseScenarioText(text, "fat_rules.textproto", {});
  ASSERT_TRUE(s.ok()) << rule.name << ": " << s.status();
  absl::StatusOr<std::unique_ptr<PreparedRun>> run = PrepareRun(*s, ".");
  ASSERT_TRUE(run.ok()) << rule.name << ": " << run.status();
  const std::string dir =
      absl::StrCat(::testing::TempDir(), "/fat_rules_test_", getpid(), "_", std::string(rule.name));
  std::filesystem::remove_all(dir);
  RunOptions options;
  options.run_dir = dir;
  options.progress = nullptr;
  options.observers = {&out->rows};
  absl::StatusOr<RunOutcome> outcome = RunInProcess(**run, 2, options);
  ASSERT_TRUE(outcome.ok()) << rule.name << ": " << outcome.status();
  out->hash = outcome->summary.final_model_hash;
  std::filesystem::remove_all(dir);
}

TEST(FatRulesTest, EveryRegisteredRuleTrainsAdversariallyAndReportsRobustAccuracy) {
  ASSERT_GE(RegisteredAlgorithms().size(), 2u);
  for (const AlgorithmEntry& rule : RegisteredAlgorithms()) {
    SCOPED_TRACE(rule.name);
    Outcome adv, adv_again, clean;
    ASSERT_NO_FATAL_FAILURE(RunRule(rule, kAdversarial, &adv));
    ASSERT_NO_FATAL_FAILURE(RunRule(rule, kAdversarial, &adv_again));
    ASSERT_NO_FATAL_FAILURE(RunRule(rule, kClean, &clean));
    // Deterministic, and the attack reached the tasks.
    EXPECT_EQ(adv.hash, adv_again.hash);
    EXPECT_NE(adv.hash, clean.hash);
    // The robust columns on every evaluation row, deterministic too.
    EXPECT_NE(std::find(adv.rows.columns().begin(), adv.rows.columns().end(), "robust_accuracy"),
              adv.rows.columns().end());
    EXPECT_NE(std::find(adv.rows.columns().begin(), adv.rows.columns().end(), "fgsm_accuracy"),
              adv.rows.columns().end());
    ASSERT_GE(adv.rows.rows().size(), 2u);
    ASSERT_EQ(adv.rows.rows().size(), adv_again.rows.rows().size());
    for (size_t r = 0; r < adv.rows.rows().size(); ++r) {
      const MetricsRow& row = adv.rows.rows()[r];
      const double robust = row.Get("robust_accuracy", -1);
      EXPECT_GE(robust, 0.0) << r;
      EXPECT_LE(robust, 1.0) << r;
      EXPECT_GE(row.Get("fgsm_accuracy", -1), 0.0) << r;
      EXPECT_EQ(robust, adv_again.rows.rows()[r].Get("robust_accuracy", -2)) << r;
    }
  }
}

}  // namespace
}  // namespace fedsim
