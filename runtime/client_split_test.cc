#include "runtime/client_split.h"

#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <string>
#include <vector>

#include "config/scenario_file.h"
#include "data/client_folder.h"
#include "data/synthetic.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "runtime/task_runner.h"
#include "util/file.h"

namespace fedsim {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;

TEST(DealTestRowsTest, SharesFollowTrainingSizesAndPartitionTheTestSet) {
  const std::vector<uint32_t> train = {1, 2, 3, 0};
  const Partition p = DealTestRows(train, 10, 7);
  ASSERT_EQ(p.size(), 4u);
  // floor(10 n_i / 6) = 1, 3, 5, 0 with remainders 4, 2, 0, 0: the last row
  // goes to client 0.
  EXPECT_EQ(p[0].size(), 2u);
  EXPECT_EQ(p[1].size(), 3u);
  EXPECT_EQ(p[2].size(), 5u);
  EXPECT_TRUE(p[3].empty());
  std::vector<uint32_t> all;
  for (const auto& rows : p) {
    EXPECT_TRUE(std::is_sorted(rows.begin(), rows.end()));
    all.insert(all.end(), rows.begin(), rows.end());
  }
  std::sort(all.begin(), all.end());
  for (uint32_t i = 0; i < 10; ++i) EXPECT_EQ(all[i], i);
  EXPECT_EQ(DealTestRows(train, 10, 7), p);  // a function of the seed
  EXPECT_NE(DealTestRows(train, 10, 8), p);  // and shuffled by it
}

TEST(ClientFolderNameTest, PadsToTheLargestId) {
  EXPECT_EQ(ClientFolderName(7, 12), "client-0007");
  EXPECT_EQ(ClientFolderName(7, 100001), "client-000007");
  EXPECT_EQ(ClientFolderName(12345, 20000), "client-12345");
}

class SplitTest : public ::testing::Test {
 protected:
  void SetUp() override {
    out_ = fs::path(::testing::TempDir()) /
           ("fedsim_split_" +
            std::string(::testing::UnitTest::GetInstance()->current_test_info()->name()) + "_" +
            std::to_string(getpid()));
    fs::remove_all(out_);
  }
  void TearDown() override { fs::remove_all(out_); }

  static config::Scenario Scenario(const std::string& partition) {
    auto s = ParseScenarioText(
        "num_clients: 5\n"
        "dataset { synthetic { alpha: 1 beta: 1 examples_per_client: 40 } }\n" +
            partition + "model { softmax {} }\nstop { max_commits: 1 }\n",
        "split.textproto", {"algorithm.fedavg.clients_per_round=2"});
    EXPECT_TRUE(s.ok()) << s.status();
    return s.ok() ? *s : config::Scenario();
  }

  static std::vector<float> Rows(const Dataset& d, std::vector<int32_t>* y) {
    std::vector<float> x(d.size() * d.dim());
    y->resize(d.size());
    d.GatherRange(0, d.size(), x.data(), y->data());
    return x;
  }

  fs::path out_;
};

TEST_F(SplitTest, EachClientFolderHoldsItsPartitionAndAShareOfTheTestSet) {
  const config::Scenario s = Scenario("partition { iid {} }\n");
  absl::StatusOr<RunData> data = BuildRunData(s, ".");
  ASSERT_TRUE(data.ok()) << data.status();
  ASSERT_FALSE(data->generated.has_value());
  size_t calls = 0;
  absl::StatusOr<std::vector<SplitClient>> split =
      SplitClients(s, "h4sh", *data, out_.string(), [&](size_t done, size_t total) {
        EXPECT_EQ(done, ++calls);
        EXPECT_EQ(total, 5u);
      });
  ASSERT_TRUE(split.ok()) << split.status();
  ASSERT_EQ(split->size(), 5u);
  const ClientDataSpec spec{data->model.example_shape(), data->model.num_classes};
  const Partition test_rows = DealTestRows(data->client_rows, data->test->size(), s.seed());
  size_t test_total = 0;
  for (uint32_t i = 0; i < 5; ++i) {
    absl::StatusOr<ClientFolder> f =
        LoadClientFolder((out_ / ClientFolderName(i, 5)).string(), spec);
    ASSERT_TRUE(f.ok()) << f.status();
    EXPECT_EQ(f->name, (*split)[i].name);
    EXPECT_TRUE(f->tabular);
    std::vector<int32_t> y, want_y;
    EXPECT_EQ(Rows(f->train, &y), Rows(data->train->Subset(data->clients[i]), &want_y));
    EXPECT_EQ(y, want_y);
    ASSERT_TRUE(f->test.has_value());
    EXPECT_EQ(Rows(*f->test, &y), Rows(data->test->Subset(test_rows[i]), &want_y));
    EXPECT_EQ(y, want_y);
    test_total += f->test->size();
  }
  EXPECT_EQ(test_total, data->test->size());
  absl::StatusOr<std::string> index = ReadFileToString((out_ / "index.csv").string());
  ASSERT_TRUE(index.ok()) << index.status();
  EXPECT_THAT(*index,
              HasSubstr("scenario hash h4sh\nclient,name,train_rows,test_rows\n0,client-0000,"));
}

TEST_F(SplitTest, GeneratedClientsKeepTheirOwnTestSplit) {
  const config::Scenario s = Scenario("");  // the natural partition: generated per client
  absl::StatusOr<RunData> data = BuildRunData(s, ".");
  ASSERT_TRUE(data.ok()) << data.status();
  ASSERT_TRUE(data->generated.has_value());
  ASSERT_TRUE(SplitClients(s, "h", *data, out_.string()).ok());
  absl::StatusOr<ClientFolder> f =
      LoadClientFolder((out_ / "client-0003").string(), {{60, 1, 1}, 10});
  ASSERT_TRUE(f.ok()) << f.status();
  absl::StatusOr<Dataset> train = GenerateSyntheticClient(
      data->generated->options, 3, data->generated->seed, SyntheticSplit::kTrain);
  absl::StatusOr<Dataset> test = GenerateSyntheticClient(
      data->generated->options, 3, data->generated->seed, SyntheticSplit::kTest);
  ASSERT_TRUE(train.ok() && test.ok());
  std::vector<int32_t> y, want_y;
  EXPECT_EQ(Rows(f->train, &y), Rows(*train, &want_y));
  EXPECT_EQ(y, want_y);
  ASSERT_TRUE(f->test.has_value());
  EXPECT_EQ(Rows(*f->test, &y), Rows(*test, &want_y));
  EXPECT_EQ(y, want_y);
}

}  // namespace
}  // namespace fedsim

namespace fedsim {
namespace {

TEST_F(SplitTest, WorkerDataFromFoldersTrainsAndEvaluatesOnlyItsClients) {
  const config::Scenario s = Scenario("partition { iid {} }\n");
  absl::StatusOr<RunData> data = BuildRunData(s, ".");
  ASSERT_TRUE(data.ok()) << data.status();
  ASSERT_TRUE(SplitClients(s, "h", *data, out_.string()).ok());
  const ClientDataSpec spec{{60, 1, 1}, 10};
  std::vector<ClientFolder> folders;
  for (const char* name : {"client-0004", "client-0001"}) {
    absl::StatusOr<ClientFolder> f = LoadClientFolder((out_ / name).string(), spec);
    ASSERT_TRUE(f.ok()) << f.status();
    folders.push_back(*std::move(f));
  }
  const RunData local = RunDataFromClientFolders(data->model, 5, folders, {4, 1});
  EXPECT_EQ(local.client_rows,
            (std::vector<uint32_t>{0, data->client_rows[1], 0, 0, data->client_rows[4]}));
  ASSERT_EQ(local.client_test.size(), 5u);
  EXPECT_EQ(local.client_test[4].size(), folders[0].test->size());
  EXPECT_TRUE(local.client_test[0].empty());

  // A training task of a held client gives the simulation's bits.
  TaskRunner sim_runner(&*data), local_runner(&local);
  absl::StatusOr<std::unique_ptr<Model>> model = NewModel(data->model);
  ASSERT_TRUE(model.ok()) << model.status();
  std::vector<float> base((*model)->NumParams(), 0.01f);
  TaskSpec task;
  task.id = 1;
  task.client = 4;
  task.seed = 99;
  task.local = s.local();
  absl::StatusOr<TaskResult> want = sim_runner.Run(task, base);
  absl::StatusOr<TaskResult> got = local_runner.Run(task, base);
  ASSERT_TRUE(want.ok() && got.ok()) << want.status() << got.status();
  EXPECT_EQ(got->delta, want->delta);

  // An evaluation task scores the client's own test split.
  task.kind = TaskKind::kEvaluate;
  got = local_runner.Run(task, base);
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_TRUE(got->delta.empty());
  EXPECT_EQ(got->metrics[kEvalCount], static_cast<double>(folders[0].test->size()));
  EXPECT_GE(got->metrics[kEvalCorrect], 0);
  EXPECT_GT(got->metrics[kEvalLossSum], 0);
  // The simulation's data holds no client's own test split.
  absl::Status none = sim_runner.Run(task, base).status();
  EXPECT_EQ(none.code(), absl::StatusCode::kFailedPrecondition);
}

}  // namespace
}  // namespace fedsim
