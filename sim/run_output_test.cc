#include "sim/run_output.h"

#include <unistd.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <limits>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "sim/replay.h"
#include "util/rng.h"

namespace fedsim {
namespace {

std::string FreshDir(const std::string& tag) {
  std::string dir = absl::StrCat(::testing::TempDir(), "/run_output_test_", getpid(), "_", tag);
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  return dir;
}

std::string ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::vector<std::string> Lines(const std::string& text) {
  std::vector<std::string> out;
  std::istringstream in(text);
  for (std::string l; std::getline(in, l);) out.push_back(l);
  return out;
}

// Doubles that a "%.6g" or a careless formatter would not bring back.
std::vector<double> HardDoubles() {
  std::vector<double> v = {0.0,
                           0.1 + 0.2,
                           1.0 / 3.0,
                           2.0 / 3.0 * 1e-7,
                           123456789.12345678,
                           std::nextafter(1.0, 2.0),
                           std::numeric_limits<double>::denorm_min(),
                           std::numeric_limits<double>::min(),
                           std::numeric_limits<double>::max(),
                           1e22,
                           9007199254740993.0};
  Rng rng(1, "run_output_test");
  for (int i = 0; i < 200; ++i) v.push_back(rng.LogNormal(0, 20));
  return v;
}

TEST(RunWriterTest, EventTimesAndDurationsReadBackBitForBit) {
  const std::string dir = FreshDir("doubles");
  absl::StatusOr<std::unique_ptr<RunWriter>> w = RunWriter::Open(dir);
  ASSERT_TRUE(w.ok()) << w.status();
  const std::vector<double> values = HardDoubles();
  for (size_t i = 0; i < values.size(); ++i) {
    TaskRecord t;
    t.id = i;
    t.client = static_cast<ClientId>(i % 7);
    t.start = values[values.size() - 1 - i];
    t.duration = values[i];
    t.seed = ~uint64_t{0} - i;  // beyond 2^53: must stay an integer
    (*w)->OnDispatch(t);
    (*w)->OnAvailability(values[i], t.client, i % 2 == 0);
  }
  ASSERT_TRUE((*w)->Close().ok());

  absl::StatusOr<std::vector<RecordedEvent>> events = ReadEventLog(dir + "/events.jsonl");
  ASSERT_TRUE(events.ok()) << events.status();
  ASSERT_EQ(events->size(), 2 * values.size());
  for (size_t i = 0; i < values.size(); ++i) {
    const RecordedEvent& d = (*events)[2 * i];
    const RecordedEvent& a = (*events)[2 * i + 1];
    EXPECT_EQ(d.kind, "dispatch");
    EXPECT_EQ(d.task, i);
    EXPECT_EQ(d.duration, values[i]) << d.text;
    EXPECT_EQ(a.kind, "avail");
    EXPECT_EQ(a.time, values[i]) << a.text;
    EXPECT_EQ(a.available, i % 2 == 0);
    const nlohmann::json j = nlohmann::json::parse(d.text);
    EXPECT_EQ(j["t"].get<double>(), values[values.size() - 1 - i]) << d.text;
    ASSERT_TRUE(j["seed"].is_number_unsigned()) << d.text;
    EXPECT_EQ(j["seed"].get<uint64_t>(), ~uint64_t{0} - i);
  }
}

TEST(RunWriterTest, EventLinesKeepTheirKeysAndOrder) {
  const std::string dir = FreshDir("keys");
  absl::StatusOr<std::unique_ptr<RunWriter>> w = RunWriter::Open(dir);
  ASSERT_TRUE(w.ok()) << w.status();
  TaskRecord t;
  t.id = 12;
  t.client = 7;
  t.base = ModelRef::Global(3);
  t.start = 0.5;
  t.duration = 2.25;
  t.seed = 27232;
  (*w)->OnDispatch(t);
  (*w)->OnArrival(t, 2.75, 1, absl::OkStatus());
  (*w)->OnArrival(t, 3, 4, absl::InvalidArgumentError("too \"stale\"\n\tby far"));
  (*w)->OnTaskLost(t, 4, "worker \x01 died");
  (*w)->OnAvailability(5, 7, false);
  CommitResult r;
  r.applied.push_back({12, 7, 1, 0.5});
  r.applied.push_back({13, 2, 0, 0.25});
  (*w)->OnCommit(6, 4, r);
  (*w)->OnCommit(6.5, 5, CommitResult{});
  TaskRecord own = t;  // a decentralized task: trains from client 7's model 2
  own.id = 14;
  own.base = ModelRef::OfClient(7, 2);
  (*w)->OnDispatch(own);
  (*w)->OnStart({"virtual_time", "version", "test_loss", "test_accuracy", "consensus"});
  MetricsRow row;
  row.virtual_time = 7;
  row.version = 5;
  row.values = {{"virtual_time", 7},
                {"version", 5},
                {"test_loss", std::numeric_limits<double>::quiet_NaN()},  // a diverged model
                {"test_accuracy", 0.125}};
  (*w)->OnEvaluation(row);
  row.values["consensus"] = 1.0 / 3;
  row.values["test_loss"] = 2.5;
  (*w)->OnEvaluation(row);
  ASSERT_TRUE((*w)->Close().ok());
  // One column per name in the declared order; a missing value is an empty
  // cell; counts print as integers.
  EXPECT_EQ(ReadFile(dir + "/metrics.csv"),
            "virtual_time,version,test_loss,test_accuracy,consensus\n"
            "7,5,nan,0.125,\n"
            "7,5,2.5,0.125,0.333333333\n");

  const std::vector<std::string> lines = Lines(ReadFile(dir + "/events.jsonl"));
  const std::vector<std::string> want = {
      R"({"ev":"dispatch","t":0.5,"task":12,"client":7,"base":3,"dur":2.25,"seed":27232})",
      R"({"ev":"arrival","t":2.75,"task":12,"client":7,"base":3,"staleness":1,"accepted":true})",
      R"({"ev":"arrival","t":3.0,"task":12,"client":7,"base":3,"staleness":4,"accepted":false,)"
      R"("reason":"too \"stale\"\n\tby far"})",
      R"({"ev":"lost","t":4.0,"task":12,"client":7,"why":"worker \u0001 died"})",
      R"({"ev":"avail","t":5.0,"client":7,"on":false})",
      R"({"ev":"commit","t":6.0,"version":4,"applied":[{"task":12,"client":7,"staleness":1,)"
      R"("weight":0.5},{"task":13,"client":2,"staleness":0,"weight":0.25}]})",
      R"({"ev":"commit","t":6.5,"version":5,"applied":[]})",
      R"({"ev":"dispatch","t":0.5,"task":14,"client":7,"base":2,"base_client":7,"dur":2.25,)"
      R"("seed":27232})",
      // JSON has no NaN: null, which still parses.
      R"({"ev":"eval","t":7.0,"version":5,"loss":null,"accuracy":0.125})",
      R"({"ev":"eval","t":7.0,"version":5,"loss":2.5,"accuracy":0.125})",
  };
  EXPECT_EQ(lines, want);
  for (const std::string& l : lines) EXPECT_TRUE(ParseEventLine(l).ok()) << l;
}

TEST(ManifestTest, IsJsonWithEveryField) {
  const std::string dir = FreshDir("manifest");
  ManifestInfo info;
  info.name = "a \"quoted\"\nname";
  info.scenario_hash = "abc123";
  info.seed = ~uint64_t{0};
  info.build_id = "0123456789ab";
  info.num_params = 7850;
  info.model = "softmax(784 -> 10)";
  info.algorithm = "fedbuff";
  info.transport = "grpc, 3 workers";
  info.backends = {"cpu", "cuda:0 (NVIDIA H200, sm_90)"};
  RunSummary s;
  s.final_model_hash = "b06b3adb";
  s.final_version = 40;
  s.final_accuracy = 0.1 + 0.2;
  s.final_loss = std::numeric_limits<double>::infinity();
  s.virtual_time = 1.0 / 3.0;
  s.updates_applied = 400;
  s.updates_dropped = 2;
  s.tasks_dispatched = 410;
  s.stop_reason = "max_commits \xff reached";  // not UTF-8: replaced, not a crash
  s.wall_s = 12.3456789;
  ASSERT_TRUE(WriteManifest(dir + "/manifest.json", info, s).ok());

  const std::string text = ReadFile(dir + "/manifest.json");
  // Indented, one key per line, as before (tests and scripts grep it).
  EXPECT_EQ(text.substr(0, 2), "{\n");
  EXPECT_NE(text.find("\n  \"final_model_hash\": \"b06b3adb\",\n"), std::string::npos) << text;
  EXPECT_EQ(text.back(), '\n');

  const nlohmann::ordered_json j = nlohmann::ordered_json::parse(text);
  std::vector<std::string> keys;
  for (const auto& [k, v] : j.items()) keys.push_back(k);
  const std::vector<std::string> want_keys = {"name",
                                              "scenario_hash",
                                              "seed",
                                              "build_id",
                                              "numeric_fingerprint",
                                              "model",
                                              "num_params",
                                              "algorithm",
                                              "algorithm_notes",
                                              "transport",
                                              "backends",
                                              "final_model_hash",
                                              "final_version",
                                              "final_accuracy",
                                              "final_loss",
                                              "virtual_time",
                                              "updates_applied",
                                              "updates_dropped",
                                              "tasks_dispatched",
                                              "stop_reason",
                                              "wall_s"};
  EXPECT_EQ(keys, want_keys);
  EXPECT_EQ(j["name"], info.name);
  EXPECT_EQ(j["seed"].get<uint64_t>(), ~uint64_t{0});
  EXPECT_EQ(j["num_params"], 7850);
  EXPECT_EQ(j["transport"], "grpc, 3 workers");
  EXPECT_EQ(j["backends"], nlohmann::ordered_json::array({"cpu", "cuda:0 (NVIDIA H200, sm_90)"}));
  EXPECT_EQ(j["final_version"], 40);
  EXPECT_EQ(j["final_accuracy"].get<double>(), 0.1 + 0.2);
  EXPECT_TRUE(j["final_loss"].is_null());
  EXPECT_EQ(j["virtual_time"].get<double>(), 1.0 / 3.0);
  EXPECT_EQ(j["tasks_dispatched"], 410);
  EXPECT_EQ(j["stop_reason"], "max_commits \xEF\xBF\xBD reached");
  EXPECT_EQ(j["wall_s"].get<double>(), 12.346);
}

// Regression: a --run_dir that names a file was called "already exists and
// is not empty", which sent the user looking inside a folder.
TEST(MakeExactRunDirTest, SaysWhatIsInTheWay) {
  const std::string dir = FreshDir("exact");
  EXPECT_TRUE(MakeExactRunDir(dir + "/new/run").ok());
  EXPECT_TRUE(std::filesystem::is_directory(dir + "/new/run"));
  EXPECT_TRUE(MakeExactRunDir(dir + "/new/run").ok());  // empty: fine
  std::ofstream(dir + "/new/run/metrics.csv") << "x\n";
  absl::Status s = MakeExactRunDir(dir + "/new/run");
  EXPECT_EQ(s.code(), absl::StatusCode::kAlreadyExists);
  EXPECT_EQ(s.message(), "the run folder " + dir +
                             "/new/run already exists and is not empty; pick another --run_dir");
  for (const char* content : {"", "text"}) {
    std::ofstream(dir + "/file") << content;
    s = MakeExactRunDir(dir + "/file");
    EXPECT_EQ(s.code(), absl::StatusCode::kAlreadyExists) << content;
    EXPECT_EQ(s.message(),
              "the run folder " + dir + "/file is a file, not a folder; pick another --run_dir");
  }
  s = MakeExactRunDir(dir + "/file/run");
  EXPECT_FALSE(s.ok());
  EXPECT_NE(s.message().find("Not a directory"), std::string::npos) << s.message();
}

}  // namespace
}  // namespace fedsim
