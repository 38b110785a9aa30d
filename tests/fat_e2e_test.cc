// End-to-end tests of federated adversarial training (issue 10): the real
// `fedsim` binary on scenarios/fat_fmnist.textproto (FedAvg) and
// scenarios/async_fmnist_lognormal.textproto (FedBuff), in-process and with
// worker processes, on real Fashion-MNIST. Shrunk by --set to a few seconds.
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <regex>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_split.h"
#include "gtest/gtest.h"
#include "tests/e2e_util.h"
#include "tools/subprocess.h"

namespace fedsim {
namespace {

namespace fs = std::filesystem;

using e2e::ManifestField;
using e2e::ReadFile;

// metrics.csv as rows of named numbers.
struct Csv {
  std::vector<std::string> header;
  std::vector<std::vector<double>> rows;
  double at(size_t row, const std::string& column) const {
    const auto it = std::find(header.begin(), header.end(), column);
    EXPECT_NE(it, header.end()) << column;
    return it == header.end() ? 0 : rows[row][it - header.begin()];
  }
};

Csv ReadCsv(const fs::path& p) {
  Csv csv;
  std::vector<std::string> lines = absl::StrSplit(ReadFile(p), '\n', absl::SkipEmpty());
  if (lines.empty()) return csv;
  csv.header = absl::StrSplit(lines[0], ',');
  for (size_t i = 1; i < lines.size(); ++i) {
    std::vector<double> row;
    for (absl::string_view cell : absl::StrSplit(lines[i], ',')) {
      double v = 0;
      EXPECT_TRUE(absl::SimpleAtod(cell, &v)) << cell;
      row.push_back(v);
    }
    csv.rows.push_back(row);
  }
  return csv;
}

class FatE2ETest : public e2e::E2EFixture {
 protected:
  // `fedsim run scenario` into tmp_/dir with `mode` (--inprocess or
  // --workers=N) and `sets`; fails the test on a non-zero exit.
  void Run(const std::string& scenario, const std::string& dir,
           const std::vector<std::string>& mode, const std::vector<std::string>& sets) {
    std::vector<std::string> argv = {FEDSIM_BINARY, "run", scenario,
                                     "--run_dir=" + (tmp_ / dir).string()};
    argv.insert(argv.end(), mode.begin(), mode.end());
    argv.insert(argv.end(), sets.begin(), sets.end());
    SubprocessSet set;
    auto started = set.Start("fedsim", argv);
    ASSERT_TRUE(started.ok()) << started.status();
    set.WaitAll(600);
    const auto c = set.children()[0];  // children() returns a copy
    std::string err;
    for (const auto& l : c.stderr_tail) err += l + "\n";
    ASSERT_EQ(c.exit_code, 0) << dir << ": " << err;
  }

  void ExpectSameRun(const std::string& a, const std::string& b) {
    EXPECT_EQ(ReadFile(tmp_ / a / "metrics.csv"), ReadFile(tmp_ / b / "metrics.csv")) << b;
    EXPECT_EQ(ReadFile(tmp_ / a / "events.jsonl"), ReadFile(tmp_ / b / "events.jsonl")) << b;
    const std::string hash = ManifestField(tmp_ / a, "final_model_hash");
    EXPECT_EQ(hash.size(), 64u);
    EXPECT_EQ(hash, ManifestField(tmp_ / b, "final_model_hash")) << b;
  }

  // Every row: robust_accuracy and fgsm_accuracy in [0, test_accuracy]
  // (an example counts only when its clean version is also right).
  static void ExpectRobustBelowClean(const Csv& csv) {
    for (size_t r = 0; r < csv.rows.size(); ++r) {
      EXPECT_GE(csv.at(r, "robust_accuracy"), 0.0) << r;
      EXPECT_LE(csv.at(r, "robust_accuracy"), csv.at(r, "test_accuracy")) << r;
      EXPECT_LE(csv.at(r, "fgsm_accuracy"), csv.at(r, "test_accuracy")) << r;
    }
  }

};

// Shrinks scenarios/fat_fmnist.textproto: 10 clients, 4 per round, 5 local
// steps of batch 16 under PGD-3 (4 passes per step), PGD-5 evaluation on
// 100 of 500 test images, 3 rounds.
const std::vector<std::string> kTinyFat = {
    "--set=num_clients=10",
    "--set=dataset.fashion_mnist.train_limit=3000",
    "--set=algorithm.fedavg.clients_per_round=4",
    "--set=local.steps=5",
    "--set=local.batch_size=16",
    "--set=local.adversarial.steps=3",
    "--set=stop.max_commits=3",
    "--set=eval.every_commits=1",
    "--set=eval.test_limit=500",
    "--set=eval.robust.examples=100",
    "--set=eval.robust.steps=5"};

TEST_F(FatE2ETest, FedAvgAdversarialIsBitIdenticalWithWorkersAndReportsRobustAccuracy) {
  const std::string scenario = "scenarios/fat_fmnist.textproto";
  Run(scenario, "inproc", {"--inprocess", "--slots=2"}, kTinyFat);
  Run(scenario, "w2", {"--workers=2", "--slots=1"}, kTinyFat);
  ExpectSameRun("inproc", "w2");

  const Csv csv = ReadCsv(tmp_ / "inproc" / "metrics.csv");
  ASSERT_EQ(csv.rows.size(), 4u);  // versions 0..3
  ExpectRobustBelowClean(csv);
  // Trained, the model resists some PGD-5 examples (an untrained one none).
  EXPECT_GT(csv.at(3, "robust_accuracy"), 0.0);
  EXPECT_GT(csv.at(3, "test_accuracy"), 0.3);
  // The manifest names the attack with its eps, and the last figures.
  EXPECT_EQ(ManifestField(tmp_ / "inproc", "robust_eval"),
            "pgd(linf, eps=0.1, step=0.01, k=5, start=random) on 100 test examples (seed 1), "
            "fgsm(linf, eps=0.1, step=0.1, start=clean)");
  EXPECT_EQ(std::stod(ManifestField(tmp_ / "inproc", "final_robust_accuracy")),
            csv.at(3, "robust_accuracy"));

  // The same run without the attack: other parameters, and a quarter of the
  // virtual time (PGD-3 costs 4 forward-backward passes per step).
  std::vector<std::string> clean = kTinyFat;
  clean.erase(std::find(clean.begin(), clean.end(), "--set=local.adversarial.steps=3"));
  clean.push_back("--set=local={steps:5 batch_size:16 lr:0.05}");
  Run(scenario, "clean", {"--inprocess", "--slots=2"}, clean);
  EXPECT_NE(ManifestField(tmp_ / "clean", "final_model_hash"),
            ManifestField(tmp_ / "inproc", "final_model_hash"));
  const double adv_time = std::stod(ManifestField(tmp_ / "inproc", "virtual_time"));
  const double clean_time = std::stod(ManifestField(tmp_ / "clean", "virtual_time"));
  EXPECT_NEAR(adv_time / clean_time, 4.0, 0.05) << adv_time << " vs " << clean_time;
}

// FedBuff on the lognormal fleet with TRADES: stale updates, asynchronous
// commits and the TRADES objective's random starts give the same bits with
// three worker processes as in-process.
TEST_F(FatE2ETest, FedBuffTradesOnALognormalFleetIsBitIdenticalWithWorkers) {
  const std::string scenario = "scenarios/async_fmnist_lognormal.textproto";
  const std::vector<std::string> sets = {
      "--set=num_clients=20",
      "--set=dataset.fashion_mnist.train_limit=4000",
      "--set=algorithm.fedbuff.buffer_size=3",
      "--set=algorithm.fedbuff.concurrency=6",
      "--set=local.steps=4",
      "--set=local.adversarial={eps:0.1 step_size:0.025 steps:2 trades_beta:6}",
      "--set=stop={max_commits:4 max_virtual_s:1e9}",
      "--set=eval={every_commits:2 test_limit:500 robust{examples:100 steps:5 fgsm:true}}"};
  Run(scenario, "inproc", {"--inprocess", "--slots=2"}, sets);
  Run(scenario, "w3", {"--workers=3", "--slots=1"}, sets);
  ExpectSameRun("inproc", "w3");
  const Csv csv = ReadCsv(tmp_ / "inproc" / "metrics.csv");
  ASSERT_EQ(csv.rows.size(), 3u);  // versions 0, 2, 4
  ExpectRobustBelowClean(csv);
  const std::string events = ReadFile(tmp_ / "inproc" / "events.jsonl");
  EXPECT_NE(events.find("\"staleness\":1,"), std::string::npos) << "no stale update applied";
}

}  // namespace
}  // namespace fedsim
