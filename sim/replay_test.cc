#include "sim/replay.h"

#include <unistd.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "config/scenario_file.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "sim/runner.h"

namespace fedsim {
namespace {

constexpr char kScenario[] =
    "name:\"replay_t\" dataset{synthetic{examples_per_client:60}} partition{natural{}} "
    "model{softmax{}} num_clients:6 algorithm{fedbuff{buffer_size:2 concurrency:3}} "
    "devices{seconds_per_example{lognormal{mu:-5 sigma:1}}} stop{max_commits:5}";

std::string FreshDir(const std::string& tag) {
  std::string dir = absl::StrCat(::testing::TempDir(), "/replay_test_", getpid(), "_", tag);
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  return dir;
}

std::vector<std::string> ReadLines(const std::string& path) {
  std::ifstream in(path);
  std::vector<std::string> lines;
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  return lines;
}

void WriteLines(const std::string& path, const std::vector<std::string>& lines) {
  std::ofstream out(path, std::ios::trunc);
  for (const std::string& l : lines) out << l << "\n";
}

// Runs the tiny scenario into `dir`; returns the run folder.
std::string RecordRun(const std::string& dir, std::string* hash) {
  absl::StatusOr<config::Scenario> s = ParseScenarioText(kScenario, "replay_t.textproto", {});
  EXPECT_TRUE(s.ok()) << s.status();
  if (!s.ok()) return "";
  absl::StatusOr<std::unique_ptr<PreparedRun>> run = PrepareRun(*s, ".");
  EXPECT_TRUE(run.ok()) << run.status();
  if (!run.ok()) return "";
  RunOptions options;
  options.out_dir = dir;
  options.progress = nullptr;
  absl::StatusOr<RunOutcome> outcome = RunInProcess(**run, 2, options);
  EXPECT_TRUE(outcome.ok()) << outcome.status();
  if (!outcome.ok()) return "";
  *hash = outcome->summary.final_model_hash;
  return outcome->run_dir;
}

// Index of the first line of `kind` for `task`, or -1.
int FindLine(const std::vector<std::string>& lines, const std::string& kind, uint64_t task) {
  const std::string a = absl::StrCat("{\"ev\":\"", kind, "\"");
  const std::string b = absl::StrCat(",\"task\":", task, ",");
  for (size_t i = 0; i < lines.size(); ++i) {
    if (lines[i].rfind(a, 0) == 0 && lines[i].find(b) != std::string::npos) {
      return static_cast<int>(i);
    }
  }
  return -1;
}

TEST(ParseEventLineTest, ReadsDispatchAndSkipsNested) {
  absl::StatusOr<RecordedEvent> e = ParseEventLine(
      "{\"ev\":\"dispatch\",\"t\":0.5,\"task\":12,\"client\":7,\"base\":0,"
      "\"dur\":3.0000000000000004,\"seed\":27232}");
  ASSERT_TRUE(e.ok()) << e.status();
  EXPECT_EQ(e->kind, "dispatch");
  EXPECT_EQ(e->task, 12u);
  EXPECT_EQ(e->client, 7u);
  EXPECT_EQ(e->duration, 3.0000000000000004);
  absl::StatusOr<RecordedEvent> c = ParseEventLine(
      "{\"ev\":\"commit\",\"t\":1,\"version\":1,\"applied\":[{\"task\":1,\"client\":2,"
      "\"staleness\":0,\"weight\":1}]}");
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->kind, "commit");
  EXPECT_TRUE(ParseEventLine("{\"ev\":\"lost\",\"why\":\"a \\\"quoted\\\" }\"}").ok());
  EXPECT_FALSE(ParseEventLine("{\"ev\":\"dispatch\",\"task\":1}").ok());
  EXPECT_FALSE(ParseEventLine("{\"t\":1}").ok());
  EXPECT_FALSE(ParseEventLine("{\"ev\":\"eval\"").ok());
}

TEST(ReplayTest, MissingAndCorruptFilesNameTheFile) {
  const std::string dir = FreshDir("errors");
  absl::StatusOr<RecordedRun> r = LoadRecordedRun(dir);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("scenario.textproto"), absl::string_view::npos) << r.status();

  std::string hash;
  const std::string run_dir = RecordRun(FreshDir("errors_run"), &hash);
  ASSERT_FALSE(run_dir.empty());
  std::vector<std::string> lines = ReadLines(run_dir + "/events.jsonl");
  ASSERT_GT(lines.size(), 3u);
  lines[2] = "{\"ev\":\"dispatch\",\"task\":";
  WriteLines(run_dir + "/events.jsonl", lines);
  r = LoadRecordedRun(run_dir);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("events.jsonl:3:"), absl::string_view::npos) << r.status();

  std::filesystem::remove(run_dir + "/manifest.json");
  r = LoadRecordedRun(run_dir);
  ASSERT_FALSE(r.ok());
  EXPECT_NE(r.status().message().find("manifest.json"), absl::string_view::npos) << r.status();
}

TEST(ReplayTest, ReproducesRunAndFindsTampering) {
  const std::string dir = FreshDir("main");
  std::string hash;
  const std::string run_dir = RecordRun(dir, &hash);
  ASSERT_FALSE(run_dir.empty());

  // 1. An untouched log replays exactly.
  absl::StatusOr<RecordedRun> rec = LoadRecordedRun(run_dir);
  ASSERT_TRUE(rec.ok()) << rec.status();
  EXPECT_EQ(rec->final_model_hash, hash);
  absl::StatusOr<ReplayReport> report = ReplayRun(*rec, dir + "/replays");
  ASSERT_TRUE(report.ok()) << report.status();
  EXPECT_TRUE(report->match) << "line " << report->diverged_line << ": " << report->note
                             << "\n rec: " << report->recorded_line
                             << "\n rep: " << report->replayed_line;
  EXPECT_TRUE(report->hash_match);
  EXPECT_EQ(report->replayed_hash, hash);
  EXPECT_NE(report->replay_dir, run_dir);

  const std::string events = run_dir + "/events.jsonl";
  const std::vector<std::string> original = ReadLines(events);

  // 2. A much longer duration for the first task that arrived: the log still
  // dispatches it the same way, so the first difference is where the log says
  // it arrived.
  {
    std::vector<std::string> lines = original;
    int d = -1, a = -1;
    for (uint64_t task = 1; task < 20 && a < 0; ++task) {
      d = FindLine(lines, "dispatch", task);
      a = FindLine(lines, "arrival", task);
    }
    ASSERT_GE(d, 0);
    ASSERT_GT(a, d);
    const size_t p = lines[d].find("\"dur\":");
    const size_t q = lines[d].find(',', p);
    lines[d] = absl::StrCat(lines[d].substr(0, p), "\"dur\":1000000", lines[d].substr(q));
    WriteLines(events, lines);
    rec = LoadRecordedRun(run_dir);
    ASSERT_TRUE(rec.ok()) << rec.status();
    report = ReplayRun(*rec, dir + "/replays");
    ASSERT_TRUE(report.ok()) << report.status();
    EXPECT_FALSE(report->match);
    EXPECT_FALSE(report->hash_match);
    EXPECT_EQ(report->diverged_line, static_cast<size_t>(a + 1));
    EXPECT_EQ(report->recorded_line, original[a]);
    EXPECT_NE(report->replayed_line, original[a]);
  }

  // 3. Another client for task 4: the replay's own choice is not in the log,
  // reported at that dispatch line.
  {
    std::vector<std::string> lines = original;
    const int d = FindLine(lines, "dispatch", 4);
    ASSERT_GE(d, 0);
    absl::StatusOr<RecordedEvent> e = ParseEventLine(lines[d]);
    ASSERT_TRUE(e.ok());
    const uint32_t other = (e->client + 1) % 6;
    const std::string from = absl::StrCat("\"client\":", e->client, ",");
    const size_t p = lines[d].find(from);
    ASSERT_NE(p, std::string::npos);
    lines[d].replace(p, from.size(), absl::StrCat("\"client\":", other, ","));
    WriteLines(events, lines);
    rec = LoadRecordedRun(run_dir);
    ASSERT_TRUE(rec.ok()) << rec.status();
    report = ReplayRun(*rec, dir + "/replays");
    ASSERT_TRUE(report.ok()) << report.status();
    EXPECT_FALSE(report->match);
    EXPECT_EQ(report->diverged_line, static_cast<size_t>(d + 1));
    EXPECT_EQ(report->recorded_line, lines[d]);
    EXPECT_EQ(report->replayed_line, original[d]);
    EXPECT_NE(report->note.find("task 4"), std::string::npos) << report->note;
  }
}

// Regression: a log whose lines end in "\r\n" (a Windows editor or a git
// checkout with autocrlf) used to be reported as DIVERGED at event 1, since
// every recorded line kept its '\r' and compared unequal as text.
TEST(ReplayTest, CrlfEventLogReplaysAsMatch) {
  const std::string dir = FreshDir("crlf");
  std::string hash;
  const std::string run_dir = RecordRun(dir, &hash);
  ASSERT_FALSE(run_dir.empty());
  const std::string events = run_dir + "/events.jsonl";
  const std::vector<std::string> lines = ReadLines(events);
  ASSERT_GT(lines.size(), 5u);
  {
    std::ofstream out(events, std::ios::binary | std::ios::trunc);
    out << "\xEF\xBB\xBF";  // and a byte-order mark, as Notepad saves it
    for (const std::string& l : lines) out << l << "\r\n";
  }
  absl::StatusOr<RecordedRun> rec = LoadRecordedRun(run_dir);
  ASSERT_TRUE(rec.ok()) << rec.status();
  ASSERT_EQ(rec->events.size(), lines.size());
  for (size_t i = 0; i < lines.size(); ++i) EXPECT_EQ(rec->events[i].text, lines[i]);
  absl::StatusOr<ReplayReport> report = ReplayRun(*rec, dir + "/replays");
  ASSERT_TRUE(report.ok()) << report.status();
  EXPECT_TRUE(report->match) << "line " << report->diverged_line << ": " << report->note
                             << "\n rec: " << report->recorded_line
                             << "\n rep: " << report->replayed_line;
  EXPECT_EQ(report->replayed_hash, hash);
}

// Events compare as JSON values, not as text: a log whose numbers are
// spelled differently (older builds printed "%.17g": "t":0, not "t":0.0;
// "dur":1e-05 vs "dur":0.00001) but mean the same still matches, while a
// change in the last bit of a number does not.
TEST(ReplayTest, EventsCompareAsValues) {
  const std::string dir = FreshDir("values");
  std::string hash;
  const std::string run_dir = RecordRun(dir, &hash);
  ASSERT_FALSE(run_dir.empty());
  const std::string events = run_dir + "/events.jsonl";
  const std::vector<std::string> original = ReadLines(events);
  ASSERT_FALSE(original.empty());
  std::vector<std::string> lines = original;
  size_t respelled = 0;
  for (std::string& l : lines) {
    const size_t p = l.find("\"t\":0.0,");
    if (p != std::string::npos) {
      l.replace(p, 8, "\"t\":0,");
      ++respelled;
    }
  }
  ASSERT_GT(respelled, 0u);
  WriteLines(events, lines);
  absl::StatusOr<RecordedRun> rec = LoadRecordedRun(run_dir);
  ASSERT_TRUE(rec.ok()) << rec.status();
  absl::StatusOr<ReplayReport> report = ReplayRun(*rec, dir + "/replays");
  ASSERT_TRUE(report.ok()) << report.status();
  EXPECT_TRUE(report->match) << "line " << report->diverged_line << ": " << report->note;

  // The last eval's accuracy, one ulp off: reported at that line.
  lines = original;
  int e = -1;
  for (size_t i = 0; i < lines.size(); ++i) {
    if (lines[i].rfind("{\"ev\":\"eval\"", 0) == 0) e = static_cast<int>(i);
  }
  ASSERT_GE(e, 0);
  nlohmann::ordered_json j = nlohmann::ordered_json::parse(lines[e]);
  j["accuracy"] = std::nextafter(j["accuracy"].get<double>(), 2.0);
  lines[e] = j.dump();
  WriteLines(events, lines);
  rec = LoadRecordedRun(run_dir);
  ASSERT_TRUE(rec.ok()) << rec.status();
  report = ReplayRun(*rec, dir + "/replays");
  ASSERT_TRUE(report.ok()) << report.status();
  EXPECT_FALSE(report->match);
  EXPECT_EQ(report->diverged_line, static_cast<size_t>(e + 1));
  EXPECT_EQ(report->replayed_line, original[e]);
}

TEST(ReplayTest, ManifestIsReadAsJson) {
  const std::string dir = FreshDir("manifest");
  std::string hash;
  const std::string run_dir = RecordRun(dir, &hash);
  ASSERT_FALSE(run_dir.empty());
  const std::string manifest = run_dir + "/manifest.json";
  auto write = [&](const std::string& text) { std::ofstream(manifest, std::ios::trunc) << text; };

  // Any valid JSON layout will do, keys in any order.
  write("{\"final_model_hash\" :\n\"" + hash + "\", \"seed\": 1}");
  absl::StatusOr<RecordedRun> r = LoadRecordedRun(run_dir);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->final_model_hash, hash);

  // A hash nested in another object is not the run's (the hand-made reader
  // took the first "final_model_hash" anywhere in the text).
  write(R"({"previous_run": {"final_model_hash": "abc"}})");
  r = LoadRecordedRun(run_dir);
  EXPECT_EQ(r.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_NE(r.status().message().find("no \"final_model_hash\""), absl::string_view::npos)
      << r.status();

  // Truncated: the parser says where.
  write("{\"final_model_hash\": \"" + hash);
  r = LoadRecordedRun(run_dir);
  EXPECT_EQ(r.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_NE(r.status().message().find("manifest.json: not valid JSON: parse error at line 1"),
            absl::string_view::npos)
      << r.status();

  write("{\"final_model_hash\": 7}");
  EXPECT_EQ(LoadRecordedRun(run_dir).status().code(), absl::StatusCode::kDataLoss);
}

TEST(ParseEventLineTest, RejectsWhatIsNotAnEvent) {
  EXPECT_FALSE(ParseEventLine("[1,2]").ok());
  EXPECT_FALSE(ParseEventLine("{\"ev\":7}").ok());
  EXPECT_FALSE(ParseEventLine("{\"ev\":\"\"}").ok());
  EXPECT_FALSE(ParseEventLine("{\"ev\":\"dispatch\",\"task\":-1,\"client\":0,\"dur\":1}").ok());
  EXPECT_FALSE(
      ParseEventLine("{\"ev\":\"dispatch\",\"task\":1,\"client\":4294967296,\"dur\":1}").ok());
  EXPECT_FALSE(ParseEventLine("{\"ev\":\"dispatch\",\"task\":1,\"client\":0,\"dur\":\"1\"}").ok());
  EXPECT_FALSE(ParseEventLine("{\"ev\":\"dispatch\",\"task\":1,\"client\":0,\"dur\":null}").ok());
  EXPECT_FALSE(ParseEventLine("{\"ev\":\"dispatch\",\"task\":1,\"client\":0,\"dur\":1e999}").ok());
  EXPECT_FALSE(ParseEventLine("{\"ev\":\"avail\",\"t\":1,\"client\":0,\"on\":1}").ok());
  EXPECT_FALSE(ParseEventLine("{\"ev\":\"avail\",\"t\":-1,\"client\":0,\"on\":true}").ok());
  absl::StatusOr<RecordedEvent> a =
      ParseEventLine("{\"ev\":\"avail\",\"t\":2.5,\"client\":3,\"on\":true}\r");
  ASSERT_TRUE(a.ok()) << a.status();
  EXPECT_EQ(a->time, 2.5);
  EXPECT_EQ(a->client, 3u);
  EXPECT_TRUE(a->available);
  absl::Status s = ParseEventLine("{\"ev\":\"eval\",").status();
  EXPECT_NE(s.message().find("not valid JSON: parse error at line 1, column"),
            absl::string_view::npos)
      << s;
}

}  // namespace
}  // namespace fedsim
