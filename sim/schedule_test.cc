#include "sim/schedule.h"

#include <unistd.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <map>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "config/scenario_file.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "sim/replay.h"
#include "sim/runner.h"
#include "util/status_macros.h"

namespace fedsim {
namespace {

using ::testing::HasSubstr;

// The tiny fleet of replay_test.cc, run long enough that every client is
// dispatched at least once.
constexpr char kFleet[] =
    "dataset{synthetic{examples_per_client:60}} partition{natural{}} "
    "model{softmax{}} num_clients:6 "
    "devices{seconds_per_example{lognormal{mu:-5 sigma:1}} jitter_sigma:0.1} "
    "stop{max_commits:10} ";
constexpr char kFedBuff[] = "algorithm{fedbuff{buffer_size:2 concurrency:3}} ";
constexpr char kFedAsync[] = "algorithm{fedasync{alpha:0.6 concurrency:3}} ";
// Clients come and go every 0.2 virtual seconds, so the log has avail lines.
constexpr char kFlaky[] =
    "participation{bernoulli{} probability{distribution{constant:0.6}} round_s:0.2} ";

std::string FreshDir(const std::string& tag) {
  std::string dir = absl::StrCat(::testing::TempDir(), "/schedule_test_", getpid(), "_", tag);
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  return dir;
}

void WriteFile(const std::string& path, const std::string& text) {
  std::ofstream out(path, std::ios::trunc);
  out << text;
}

absl::StatusOr<std::unique_ptr<PreparedRun>> Prepare(const std::string& text,
                                                     const std::string& dir = ".") {
  FEDSIM_ASSIGN_OR_RETURN(config::Scenario s, ParseScenarioText(text, "sched_t.textproto", {}));
  return PrepareRun(s, dir);
}

// Runs `text` in-process into `out_dir`.
absl::StatusOr<RunOutcome> RunText(const std::string& text, const std::string& out_dir) {
  FEDSIM_ASSIGN_OR_RETURN(std::unique_ptr<PreparedRun> run, Prepare(text));
  RunOptions options;
  options.out_dir = out_dir;
  options.progress = nullptr;
  return RunInProcess(*run, 2, options);
}

std::vector<RecordedEvent> Events(const std::string& run_dir) {
  absl::StatusOr<std::vector<RecordedEvent>> e = ReadEventLog(run_dir + "/events.jsonl");
  EXPECT_TRUE(e.ok()) << e.status();
  return e.ok() ? *e : std::vector<RecordedEvent>{};
}

// Per client: durations of its dispatches in log order.
std::map<uint32_t, std::vector<double>> DurationsByClient(const std::vector<RecordedEvent>& ev) {
  std::map<uint32_t, std::vector<double>> out;
  for (const RecordedEvent& e : ev) {
    if (e.kind == "dispatch") out[e.client].push_back(e.duration);
  }
  return out;
}

std::vector<std::string> AvailLines(const std::vector<RecordedEvent>& ev) {
  std::vector<std::string> out;
  for (const RecordedEvent& e : ev) {
    if (e.kind == "avail") out.push_back(e.text);
  }
  return out;
}

std::string Name(const std::string& n) { return absl::StrCat("name:\"", n, "\" "); }

TEST(ScheduleTest, OtherRuleTakesEachClientsRecordedDurations) {
  const std::string dir = FreshDir("other_rule");
  absl::StatusOr<RunOutcome> rec = RunText(absl::StrCat(Name("rec"), kFleet, kFedBuff), dir);
  ASSERT_TRUE(rec.ok()) << rec.status();
  const auto recorded = DurationsByClient(Events(rec->run_dir));
  ASSERT_GE(recorded.size(), 4u);

  absl::StatusOr<RunOutcome> rerun =
      RunText(absl::StrCat(Name("rerun"), kFleet, kFedAsync, "schedule{events:\"", rec->run_dir,
                           "/events.jsonl\"}"),
              dir);
  ASSERT_TRUE(rerun.ok()) << rerun.status();
  const auto replayed = DurationsByClient(Events(rerun->run_dir));
  ASSERT_FALSE(replayed.empty());
  size_t checked = 0;
  for (const auto& [client, durs] : replayed) {
    if (!recorded.count(client)) continue;  // not in the recording: the device model
    const std::vector<double>& want = recorded.at(client);
    for (size_t k = 0; k < durs.size(); ++k) {
      // Bit-exact: the log prints durations so that they read back exactly.
      EXPECT_EQ(durs[k], want[k % want.size()]) << "client " << client << " task " << k;
      ++checked;
    }
  }
  EXPECT_GE(checked, 10u);
}

TEST(ScheduleTest, RunFolderWorksAsWellAsItsEventsFile) {
  const std::string dir = FreshDir("folder");
  absl::StatusOr<RunOutcome> rec = RunText(absl::StrCat(Name("rec"), kFleet, kFedBuff), dir);
  ASSERT_TRUE(rec.ok()) << rec.status();
  absl::StatusOr<std::unique_ptr<PreparedRun>> a =
      Prepare(absl::StrCat(kFleet, kFedAsync, "schedule{events:\"", rec->run_dir, "\"}"));
  ASSERT_TRUE(a.ok()) << a.status();
  ASSERT_NE((*a)->schedule, nullptr);
  EXPECT_EQ((*a)->schedule->source, rec->run_dir + "/events.jsonl");
  EXPECT_FALSE((*a)->schedule->windows.has_value());  // no avail lines: process kept
}

TEST(ScheduleTest, OwnRuleOnOwnScheduleReproducesTheFinalModel) {
  const std::string dir = FreshDir("own_rule");
  for (const std::string& participation : {std::string(""), std::string(kFlaky)}) {
    SCOPED_TRACE(participation);
    absl::StatusOr<RunOutcome> rec =
        RunText(absl::StrCat(Name("rec"), kFleet, kFedBuff, participation), dir);
    ASSERT_TRUE(rec.ok()) << rec.status();
    absl::StatusOr<RunOutcome> again =
        RunText(absl::StrCat(Name("again"), kFleet, kFedBuff, participation, "schedule{events:\"",
                             rec->run_dir, "/events.jsonl\"}"),
                dir);
    ASSERT_TRUE(again.ok()) << again.status();
    EXPECT_EQ(again->summary.final_model_hash, rec->summary.final_model_hash);
    EXPECT_EQ(again->summary.tasks_dispatched, rec->summary.tasks_dispatched);
  }
}

TEST(ScheduleTest, RecordedAvailabilityReplacesTheParticipationProcess) {
  const std::string dir = FreshDir("avail");
  absl::StatusOr<RunOutcome> rec =
      RunText(absl::StrCat(Name("rec"), kFleet, kFedBuff, kFlaky), dir);
  ASSERT_TRUE(rec.ok()) << rec.status();
  const std::vector<std::string> recorded = AvailLines(Events(rec->run_dir));
  ASSERT_GT(recorded.size(), 4u);

  // The same process on another round length: it would change availability
  // at other times, but the log's times win.
  absl::StatusOr<RunOutcome> rerun =
      RunText(absl::StrCat(Name("rerun"), kFleet, kFedAsync,
                           "participation{bernoulli{} probability{distribution{constant:0.6}} "
                           "round_s:0.35} schedule{events:\"",
                           rec->run_dir, "\"}"),
              dir);
  ASSERT_TRUE(rerun.ok()) << rerun.status();
  const std::vector<std::string> replayed = AvailLines(Events(rerun->run_dir));
  ASSERT_FALSE(replayed.empty());
  // The runs stop at different times, so one stream is a prefix of the other.
  const size_t n = std::min(recorded.size(), replayed.size());
  for (size_t i = 0; i < n; ++i) EXPECT_EQ(replayed[i], recorded[i]) << "avail line " << i;
}

TEST(ScheduleTest, WindowsFromAvailLines) {
  const std::string dir = FreshDir("windows");
  const std::string log = dir + "/events.jsonl";
  WriteFile(log,
            "{\"ev\":\"eval\",\"t\":0,\"version\":0}\n"
            "{\"ev\":\"dispatch\",\"t\":0,\"task\":0,\"client\":2,\"base\":0,\"dur\":1.5,"
            "\"seed\":1}\n"
            "{\"ev\":\"avail\",\"t\":1,\"client\":0,\"on\":false}\n"
            "{\"ev\":\"avail\",\"t\":2,\"client\":1,\"on\":true}\n"
            "{\"ev\":\"avail\",\"t\":3,\"client\":0,\"on\":true}\n"
            "{\"ev\":\"avail\",\"t\":4,\"client\":1,\"on\":false}\n");
  config::Schedule cfg;
  cfg.set_events(log);
  absl::StatusOr<TraceSchedule> s = LoadSchedule(cfg, 4, ".");
  ASSERT_TRUE(s.ok()) << s.status();
  ASSERT_TRUE(s->windows.has_value());
  const double inf = INFINITY;
  using W = std::vector<std::pair<double, double>>;
  EXPECT_EQ((*s->windows)[0], (W{{0, 1}, {3, inf}}));  // on before its first "off"
  EXPECT_EQ((*s->windows)[1], (W{{2, 4}}));            // off before its first "on"
  EXPECT_EQ((*s->windows)[2], (W{{0, inf}}));          // no change, dispatched: always on
  EXPECT_EQ((*s->windows)[3], W{});                    // no change, never dispatched: open
  EXPECT_EQ(s->open_availability, std::vector<ClientId>{3});
  EXPECT_EQ(s->durations[2], std::vector<double>{1.5});
  EXPECT_EQ(s->ClientsWithoutDurations(), (std::vector<ClientId>{0, 1, 3}));

  // The model built from them: no change event at infinity.
  auto model = ParticipationModel::FromWindows(*s->windows, {1, 1, 1, 1}, 0);
  ASSERT_TRUE(model.ok()) << model.status();
  auto stream = (*model)->Changes();
  std::vector<AvailabilityChange> got;
  while (auto c = stream->Next()) got.push_back(*c);
  EXPECT_EQ(got, (std::vector<AvailabilityChange>{
                     {1, 0, false}, {2, 1, true}, {3, 0, true}, {4, 1, false}}));
  EXPECT_TRUE((*model)->AvailableAt(0, 1e12));
}

// A deployment's log: the dispatch line has the device model's estimate,
// the arrival line the real duration, which the schedule takes.
TEST(ScheduleTest, AWallClockRecordingGivesItsRealDurations) {
  const std::string dir = FreshDir("wall");
  const std::string log = dir + "/events.jsonl";
  WriteFile(log,
            "{\"ev\":\"dispatch\",\"t\":0,\"task\":1,\"client\":0,\"base\":0,\"dur\":1.0,"
            "\"seed\":1}\n"
            "{\"ev\":\"dispatch\",\"t\":0,\"task\":2,\"client\":1,\"base\":0,\"dur\":1.0,"
            "\"seed\":2}\n"
            "{\"ev\":\"arrival\",\"t\":0.25,\"task\":2,\"client\":1,\"base\":0,"
            "\"staleness\":0,\"dur\":0.25,\"accepted\":true}\n"
            "{\"ev\":\"dispatch\",\"t\":0.25,\"task\":3,\"client\":1,\"base\":0,\"dur\":1.0,"
            "\"seed\":3}\n"
            "{\"ev\":\"arrival\",\"t\":0.5,\"task\":3,\"client\":1,\"base\":0,"
            "\"staleness\":0,\"dur\":0.25,\"accepted\":true}\n"
            "{\"ev\":\"arrival\",\"t\":0.75,\"task\":1,\"client\":0,\"base\":0,"
            "\"staleness\":0,\"dur\":0.75,\"accepted\":true}\n");
  config::Schedule cfg;
  cfg.set_events(log);
  absl::StatusOr<TraceSchedule> s = LoadSchedule(cfg, 2, ".");
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_EQ(s->durations[0], std::vector<double>{0.75});
  EXPECT_EQ(s->durations[1], (std::vector<double>{0.25, 0.25}));
}

TEST(ScheduleTest, CursorCyclesAndFallsBack) {
  TraceSchedule s;
  s.durations = {{1.0, 2.0}, {}};
  ScheduleCursor cursor(&s);
  EXPECT_EQ(cursor.Next(0), 1.0);
  EXPECT_EQ(cursor.Next(1), std::nullopt);
  EXPECT_EQ(cursor.Next(0), 2.0);
  EXPECT_EQ(cursor.Next(0), 1.0);
  EXPECT_EQ(cursor.fallbacks(), 1u);
  EXPECT_EQ(cursor.cycled(), 1u);
}

TEST(ScheduleTest, DurationsCsvDrivesTheRun) {
  const std::string dir = FreshDir("csv_ok");
  std::string csv = "client,task_index,duration_s\n";
  for (int c = 0; c < 6; ++c) {
    for (int k = 0; k < 2; ++k) csv += absl::StrCat(c, ",", k, ",", 0.25 * (c + 1) + k, "\n");
  }
  WriteFile(dir + "/d.csv", csv);
  // Relative to the scenario's folder.
  absl::StatusOr<config::Scenario> s = ParseScenarioText(
      absl::StrCat(Name("csv"), kFleet, kFedAsync, "schedule{durations_csv:\"d.csv\"}"),
      "x.textproto", {});
  ASSERT_TRUE(s.ok()) << s.status();
  absl::StatusOr<std::unique_ptr<PreparedRun>> run = PrepareRun(*s, dir);
  ASSERT_TRUE(run.ok()) << run.status();
  RunOptions options;
  options.out_dir = dir;
  options.progress = nullptr;
  absl::StatusOr<RunOutcome> out = RunInProcess(**run, 2, options);
  ASSERT_TRUE(out.ok()) << out.status();
  for (const auto& [client, durs] : DurationsByClient(Events(out->run_dir))) {
    for (size_t k = 0; k < durs.size(); ++k) {
      EXPECT_EQ(durs[k], 0.25 * (client + 1) + static_cast<double>(k % 2));
    }
  }
}

absl::Status CsvError(const std::string& tag, const std::string& csv) {
  const std::string dir = FreshDir(tag);
  WriteFile(dir + "/d.csv", csv);
  config::Schedule cfg;
  cfg.set_durations_csv(dir + "/d.csv");
  return LoadSchedule(cfg, 6, ".").status();
}

TEST(ScheduleTest, BadCsvRowsAreReportedWithFileAndLine) {
  absl::Status s = CsvError("neg", "client,task_index,duration_s\n0,0,1.5\n1,0,-2\n");
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(s.message(), HasSubstr("d.csv:3: duration_s '-2'"));

  s = CsvError("client", "client,task_index,duration_s\n\n9,0,1\n");
  EXPECT_THAT(s.message(), HasSubstr("d.csv:3: unknown client id 9 (num_clients is 6)"));

  s = CsvError("fields", "client,task_index,duration_s\n0,0\n");
  EXPECT_THAT(s.message(), HasSubstr("d.csv:2: expected 3 fields"));

  s = CsvError("header", "client,start_s,end_s\n");
  EXPECT_THAT(s.message(), HasSubstr("d.csv:1: expected the header"));

  s = CsvError("twice", "client,task_index,duration_s\n0,0,1\n0,0,2\n");
  EXPECT_THAT(s.message(), HasSubstr("d.csv:3: client 0 task_index 0 is given twice"));

  s = CsvError("gap", "client,task_index,duration_s\n0,0,1\n0,2,2\n");
  EXPECT_THAT(s.message(), HasSubstr("client 0 has no task_index 1"));

  s = CsvError("nan", "client,task_index,duration_s\n0,0,nan\n");
  EXPECT_THAT(s.message(), HasSubstr("d.csv:2: duration_s 'nan'"));
}

// The shared CSV reader (util/csv.h): comments, CRLF and a byte-order mark.
TEST(ScheduleTest, DurationsCsvFromASpreadsheetLoads) {
  const std::string dir = FreshDir("csv_bom");
  WriteFile(dir + "/d.csv",
            "\xEF\xBB\xBF# exported\r\nclient,task_index,duration_s\r\n"
            "1,1,2.5\r\n# client 1 first task\r\n1,0,0.5\r\n");
  config::Schedule cfg;
  cfg.set_durations_csv(dir + "/d.csv");
  absl::StatusOr<TraceSchedule> s = LoadSchedule(cfg, 3, ".");
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_EQ(s->durations, (std::vector<std::vector<double>>{{}, {0.5, 2.5}, {}}));
  // The line of a repeated index counts the comment lines too.
  absl::Status twice =
      CsvError("csv_twice", "# a\nclient,task_index,duration_s\n0,0,1\n# b\n0,0,2\n");
  EXPECT_THAT(twice.message(),
              HasSubstr("d.csv:5: client 0 task_index 0 is given twice (first on line 3)"));
}

TEST(ScheduleTest, BadEventLogsAreReportedBeforeTheRun) {
  const std::string dir = FreshDir("bad_log");
  // Missing file: named, with a hint.
  absl::StatusOr<std::unique_ptr<PreparedRun>> r =
      Prepare(absl::StrCat(kFleet, kFedAsync, "schedule{events:\"", dir, "/nope.jsonl\"}"));
  EXPECT_EQ(r.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(r.status().message(), HasSubstr("nope.jsonl"));

  // A client the scenario does not have.
  WriteFile(dir + "/a.jsonl",
            "{\"ev\":\"dispatch\",\"t\":0,\"task\":0,\"client\":1,\"base\":0,\"dur\":1}\n"
            "{\"ev\":\"dispatch\",\"t\":0,\"task\":1,\"client\":7,\"base\":0,\"dur\":1}\n");
  r = Prepare(absl::StrCat(kFleet, kFedAsync, "schedule{events:\"", dir, "/a.jsonl\"}"));
  EXPECT_EQ(r.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(r.status().message(), HasSubstr("a.jsonl:2: client 7 is not in [0, 6)"));

  // A negative duration.
  WriteFile(dir + "/b.jsonl",
            "{\"ev\":\"dispatch\",\"t\":0,\"task\":0,\"client\":1,\"base\":0,\"dur\":-1}\n");
  r = Prepare(absl::StrCat(kFleet, kFedAsync, "schedule{events:\"", dir, "/b.jsonl\"}"));
  EXPECT_EQ(r.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(r.status().message(), HasSubstr("b.jsonl:1: dispatch without a valid \"dur\""));
}

TEST(ScheduleTest, ScenarioNeedsExactlyOneSource) {
  absl::StatusOr<config::Scenario> s = ParseScenarioText(
      absl::StrCat(kFleet, "schedule{events:\"a\" durations_csv:\"b\"}"), "x.textproto", {});
  EXPECT_THAT(s.status().message(), HasSubstr("x.textproto:1:"));
  EXPECT_THAT(s.status().message(), HasSubstr("give one of them"));
  s = ParseScenarioText(absl::StrCat(kFleet, "schedule{}"), "x.textproto", {});
  EXPECT_THAT(s.status().message(), HasSubstr("schedule: is empty"));
}

}  // namespace
}  // namespace fedsim
