// fedsim compare: runs a comparison file's arms x seeds, several at a time,
// each as a child `fedsim run --inprocess` (so a crash or an out-of-memory
// in one run ends only that run, and every run is exactly the command that
// runs it alone), then writes summary.csv and summary.md (compare/).
#include <unistd.h>

#include <algorithm>
#include <csignal>
#include <cstdio>
#include <deque>
#include <filesystem>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "compare/comparison_file.h"
#include "compare/plan.h"
#include "compare/progress.h"
#include "compare/run_files.h"
#include "compare/summary.h"
#include "core/clock.h"
#include "sim/run_output.h"
#include "tools/commands.h"
#include "tools/common_flags.h"
#include "tools/flag_checks.h"
#include "tools/run_common.h"
#include "tools/subprocess.h"
#include "util/file.h"

ABSL_FLAG(int, parallel, 0,
          "Runs at a time (default 0 = one per CPU core). Results do not depend on it.");
ABSL_FLAG(bool, force, false,
          "Redo every run, even those already finished with the same scenario hash.");
ABSL_FLAG(std::string, seeds, "",
          "Comma-separated seeds that replace the file's `seeds` (e.g. --seeds=1,2).");
ABSL_FLAG(std::string, as, "",
          "Name of the comparison's folder instead of the file's `name` (e.g. a reduced run "
          "next to the full one).");
ABSL_FLAG(std::string, out_dir, "", "Parent folder instead of the file's out_dir (default runs).");
ABSL_FLAG(bool, dry_run, false,
          "Print each run's state (reuse / run / redo) and command, and run nothing.");

namespace fedsim {
namespace {

namespace fs = std::filesystem;

// The last complete row of a run's metrics.csv, as far as progress needs it.
struct LastRow {
  double virtual_time = 0, version = 0, accuracy = -1;
};

LastRow ReadLastRow(const std::string& dir) {
  LastRow out;
  absl::StatusOr<std::string> text = ReadFileToString(dir + "/metrics.csv");
  if (!text.ok()) return out;
  std::vector<absl::string_view> lines = TextLines(*text);
  // While the run writes it, the last line may be cut short: only whole
  // lines count.
  if (!lines.empty() && text->back() != '\n') lines.pop_back();
  if (lines.size() < 2) return out;
  const std::vector<absl::string_view> names = absl::StrSplit(lines.front(), ',');
  const std::vector<absl::string_view> cells = absl::StrSplit(lines.back(), ',');
  for (size_t i = 0; i < names.size() && i < cells.size(); ++i) {
    double v;
    if (!absl::SimpleAtod(cells[i], &v)) continue;
    if (names[i] == "virtual_time") out.virtual_time = v;
    if (names[i] == "version") out.version = v;
    if (names[i] == "test_accuracy") out.accuracy = v;
  }
  return out;
}

struct Running {
  size_t run;  // index into plan.runs
  std::unique_ptr<SubprocessSet> process;
  FILE* log = nullptr;
  absl::Time start;
};

// Runs the plan's pending runs, `parallel` at a time, with progress lines on
// stderr. Returns the failures by run index.
class Scheduler {
 public:
  Scheduler(const ComparisonPlan& plan, std::vector<size_t> pending, int parallel, int slots,
            int eval_threads, Clock* clock)
      : plan_(plan),
        queue_(pending.begin(), pending.end()),
        parallel_(parallel),
        slots_(slots),
        eval_threads_(eval_threads),
        clock_(clock),
        tty_(isatty(2)) {
    states_.resize(plan.runs.size());
    for (size_t i : pending) states_[i].state = RunProgress::State::kQueued;
    for (size_t i = 0; i < plan.runs.size(); ++i) {
      if (std::find(pending.begin(), pending.end(), i) == pending.end()) {
        states_[i].state = RunProgress::State::kDone;
      }
      states_[i].seed = plan.runs[i].seed;
      width_ = std::max<int>(width_, plan.runs[i].arm.size());
    }
  }

  // Returns false when interrupted.
  bool Run() {
    char self[4096];
    const ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
    if (n <= 0) {
      std::fprintf(stderr, "fedsim compare: cannot find the fedsim executable\n");
      return false;
    }
    self[n] = '\0';
    self_ = self;
    absl::Time last_print = clock_->Now() - absl::Hours(1);
    while (!queue_.empty() || !running_.empty()) {
      if (g_interrupted.load()) {
        Interrupt();
        return false;
      }
      while (!queue_.empty() && static_cast<int>(running_.size()) < parallel_) {
        StartNext();
      }
      Reap();
      const absl::Duration every = tty_ ? absl::Seconds(1) : absl::Seconds(30);
      if (clock_->Now() - last_print >= every) {
        PrintBlock();
        last_print = clock_->Now();
      }
      clock_->SleepFor(absl::Milliseconds(100));
    }
    ClearBlock();
    return true;
  }

  const std::map<size_t, std::string>& failures() const { return failures_; }

 private:
  void StartNext() {
    const size_t i = queue_.front();
    queue_.pop_front();
    const PlannedRun& run = plan_.runs[i];
    std::error_code ec;
    fs::create_directories(fs::path(run.log_path).parent_path(), ec);
    Running r;
    r.run = i;
    r.start = clock_->Now();
    // The child appends its stdout to the log, and so do we its stderr lines.
    if (FILE* f = std::fopen(run.log_path.c_str(), "w")) {
      std::fprintf(f, "$ %s\n", RunCommandLine(plan_, run).c_str());
      std::fclose(f);
    }
    r.log = std::fopen(run.log_path.c_str(), "a");
    FILE* log = r.log;
    r.process = std::make_unique<SubprocessSet>([log](const std::string& line) {
      if (log == nullptr) return;
      // The set prefixes "[name] "; the log is one run's, so drop it.
      const size_t close = line.find("] ");
      std::fprintf(log, "%s\n", line.substr(close == std::string::npos ? 0 : close + 2).c_str());
      std::fflush(log);
    });
    std::vector<std::string> argv = {self_};
    for (std::string& a : RunArguments(plan_, run, slots_, eval_threads_)) argv.push_back(a);
    absl::StatusOr<size_t> started =
        r.process->Start(absl::StrCat(run.arm, "/seed-", run.seed), argv, run.log_path);
    if (!started.ok()) {
      Fail(i, std::string(started.status().message()));
      if (r.log != nullptr) std::fclose(r.log);
      return;
    }
    states_[i].state = RunProgress::State::kRunning;
    running_.push_back(std::move(r));
  }

  void Reap() {
    for (auto it = running_.begin(); it != running_.end();) {
      Running& r = *it;
      RunProgress& p = states_[r.run];
      const PlannedRun& run = plan_.runs[r.run];
      p.elapsed_s = absl::ToDoubleSeconds(clock_->Now() - r.start);
      if (r.process->Poll() > 0) {
        const LastRow row = ReadLastRow(run.dir);
        p.share = RunShare(row.virtual_time, row.version, run.max_virtual_s, run.max_commits);
        p.accuracy = row.accuracy;
        ++it;
        continue;
      }
      r.process->WaitAll(5);  // joins the stderr reader: the log is complete
      const SubprocessSet::Child child = r.process->children()[0];
      if (r.log != nullptr) std::fclose(r.log);
      const RunInspection done = InspectRun(run);
      if (child.exit_code == 0 && done.state == RunState::kFinished) {
        p.state = RunProgress::State::kDone;
        finished_s_[run.arm].push_back(p.elapsed_s);
        Event(absl::StrCat("finished ", run.arm, " seed ", run.seed, " in ",
                           FormatDuration(p.elapsed_s)));
      } else {
        std::vector<std::string> tail(child.stderr_tail.begin(), child.stderr_tail.end());
        if (tail.size() > 3) tail.erase(tail.begin(), tail.end() - 3);
        Fail(r.run, absl::StrCat(child.exit_code == 0
                                     ? "the run did not finish"
                                     : absl::StrCat("exited with status ", child.exit_code),
                                 tail.empty() ? "" : ": ", absl::StrJoin(tail, " / "),
                                 " (log: ", run.log_path, ")"));
      }
      it = running_.erase(it);
    }
  }

  void Fail(size_t i, const std::string& why) {
    states_[i].state = RunProgress::State::kFailed;
    failures_[i] = why;
    const PlannedRun& run = plan_.runs[i];
    Event(
        absl::StrCat("FAILED ", run.arm, " seed ", run.seed, ": ", why, "; the other runs go on"));
  }

  void Interrupt() {
    ClearBlock();
    for (Running& r : running_) r.process->SignalAll(SIGINT);
    for (Running& r : running_) {
      r.process->WaitAll(30);
      if (r.log != nullptr) std::fclose(r.log);
    }
    running_.clear();
  }

  // Typical wall seconds of one run of `arm` (its finished runs, else any arm's).
  double Typical(const std::string& arm) const {
    auto mean = [](const std::vector<double>& v) {
      double s = 0;
      for (double x : v) s += x;
      return v.empty() ? 0.0 : s / v.size();
    };
    auto it = finished_s_.find(arm);
    if (it != finished_s_.end() && !it->second.empty()) return mean(it->second);
    std::vector<double> all;
    for (const auto& [name, v] : finished_s_) all.insert(all.end(), v.begin(), v.end());
    return mean(all);
  }

  std::vector<std::string> BlockLines() const {
    std::vector<std::string> lines;
    std::map<std::string, std::vector<RunProgress>> by_arm;
    std::vector<std::string> order;
    size_t done = 0, failed = 0;
    for (size_t i = 0; i < plan_.runs.size(); ++i) {
      const std::string& arm = plan_.runs[i].arm;
      if (by_arm.find(arm) == by_arm.end()) order.push_back(arm);
      by_arm[arm].push_back(states_[i]);
      done += states_[i].state == RunProgress::State::kDone;
      failed += states_[i].state == RunProgress::State::kFailed;
    }
    std::optional<double> total = 0;
    for (const std::string& arm : order) {
      const std::vector<RunProgress>& runs = by_arm[arm];
      const std::optional<double> eta = ArmEta(runs, Typical(arm));
      if (total && eta) {
        *total = std::max(*total, *eta);
      } else {
        total.reset();
      }
      const bool active = std::any_of(runs.begin(), runs.end(), [](const RunProgress& r) {
        return r.state == RunProgress::State::kRunning;
      });
      if (active) lines.push_back(ArmProgressLine(arm, width_, runs, eta));
    }
    // Runs still queued share the slots with everything else: the overall
    // ETA is at least the queue's work spread over the slots.
    if (total && !queue_.empty()) {
      *total = std::max(*total, queue_.size() * Typical("") / parallel_);
    }
    lines.insert(lines.begin(), absl::StrCat("fedsim compare: ", done, "/", plan_.runs.size(),
                                             " runs done, ", running_.size(), " running, ", failed,
                                             " failed; ETA ", FormatDuration(total)));
    return lines;
  }

  void ClearBlock() {
    if (!tty_ || drawn_ == 0) return;
    std::fprintf(stderr, "\033[%dA", drawn_);
    for (int i = 0; i < drawn_; ++i) std::fprintf(stderr, "\033[2K\n");
    std::fprintf(stderr, "\033[%dA", drawn_);
    drawn_ = 0;
  }

  void PrintBlock() {
    const std::vector<std::string> lines = BlockLines();
    ClearBlock();
    for (const std::string& l : lines) std::fprintf(stderr, "%s\n", l.c_str());
    if (tty_) drawn_ = static_cast<int>(lines.size());
    std::fflush(stderr);
  }

  // A line that stays (run finished or failed), above the live block.
  void Event(const std::string& line) {
    ClearBlock();
    std::fprintf(stderr, "fedsim compare: %s\n", line.c_str());
    if (tty_) PrintBlock();
  }

  const ComparisonPlan& plan_;
  std::deque<size_t> queue_;
  const int parallel_, slots_, eval_threads_;
  Clock* clock_;
  const bool tty_;
  std::string self_;
  int width_ = 8;
  int drawn_ = 0;
  std::vector<RunProgress> states_;
  std::vector<Running> running_;
  std::map<size_t, std::string> failures_;
  std::map<std::string, std::vector<double>> finished_s_;
};

absl::StatusOr<std::vector<uint64_t>> ParseSeeds(const std::string& text) {
  std::vector<uint64_t> seeds;
  if (text.empty()) return seeds;
  for (absl::string_view part : absl::StrSplit(text, ',')) {
    uint64_t s;
    if (!absl::SimpleAtoi(part, &s)) {
      return absl::InvalidArgumentError(
          absl::StrCat("--seeds: '", part, "' is not a seed; e.g. --seeds=1,2,3"));
    }
    seeds.push_back(s);
  }
  return seeds;
}

// Reads every finished run and writes summary.csv and summary.md. Returns
// summary.md's text.
absl::StatusOr<std::string> Summarize(const ComparisonPlan& plan,
                                      const std::map<size_t, std::string>& failures) {
  SummaryInput in;
  in.spec = plan.file.spec;
  in.comparison_file = plan.file.path;
  in.base_scenario = plan.file.base_scenario;
  in.command_line_overrides = plan.extra_overrides;
  for (const compare::Arm& arm : plan.file.spec.arms()) {
    ArmResults a;
    a.name = arm.name();
    a.note = arm.note();
    a.overrides.assign(arm.set().begin(), arm.set().end());
    in.arms.push_back(std::move(a));
  }
  std::set<std::string> builds;
  for (size_t i = 0; i < plan.runs.size(); ++i) {
    const PlannedRun& run = plan.runs[i];
    ArmResults& arm = in.arms[run.arm_index];
    arm.algorithm = run.algorithm;
    if (auto f = failures.find(i); f != failures.end()) {
      arm.failures.push_back(absl::StrCat("seed ", run.seed, ": ", f->second));
      continue;
    }
    absl::StatusOr<MetricsTable> metrics = ReadMetricsCsv(run.dir + "/metrics.csv");
    absl::StatusOr<RunFigures> figures = metrics.ok()
                                             ? FiguresOfRun(*metrics, plan.file.spec)
                                             : absl::StatusOr<RunFigures>(metrics.status());
    if (!figures.ok()) {
      arm.failures.push_back(absl::StrCat("seed ", run.seed, ": ", figures.status().message()));
      continue;
    }
    arm.by_seed[run.seed] = *figures;
    if (auto m = ReadManifest(run.dir + "/manifest.json"); m.ok()) builds.insert(m->build_id);
  }
  in.build_ids.assign(builds.begin(), builds.end());
  const std::string md = SummaryMarkdown(in);
  if (absl::Status s = WriteTextFile(plan.dir + "/summary.csv", SummaryCsv(in)); !s.ok()) return s;
  if (absl::Status s = WriteTextFile(plan.dir + "/summary.md", md); !s.ok()) return s;
  return md;
}

}  // namespace

int CompareMain(int argc, char** argv) {
  const std::vector<std::string> overrides = ScenarioOverrides(argc, argv);
  std::vector<char*> args = absl::ParseCommandLine(argc, argv);
  if (args.size() != 2) {
    std::fprintf(stderr,
                 "usage: fedsim compare COMPARISON.textproto [--parallel=N] [--force] "
                 "[--seeds=1,2] [--as=NAME] [--set=field=value ...]\n(see 'fedsim compare "
                 "--help')\n");
    return 2;
  }
  ProblemList flag_problems;
  CheckFlagRange("parallel", absl::GetFlag(FLAGS_parallel), 0, kMaxProcesses,
                 "runs at a time; 0 = one per CPU core", &flag_problems);
  CheckSlotsFlag(&flag_problems);
  if (!flag_problems.empty()) return ReportFlagProblems("compare", flag_problems);
  for (const std::string& o : overrides) {
    if (absl::StartsWith(o, "seed=") || absl::StartsWith(o, "name=")) {
      std::fprintf(stderr, "fedsim compare: --set=%s: use --seeds (or --as) instead\n", o.c_str());
      return 2;
    }
  }
  absl::StatusOr<std::vector<uint64_t>> seeds = ParseSeeds(absl::GetFlag(FLAGS_seeds));
  if (!seeds.ok()) {
    std::fprintf(stderr, "fedsim compare: %s\n", std::string(seeds.status().message()).c_str());
    return 2;
  }
  absl::StatusOr<ComparisonFile> file = LoadComparison(args[1]);
  if (!file.ok()) {
    std::fprintf(stderr, "%s\n", std::string(file.status().message()).c_str());
    return 1;
  }
  PlanOptions po;
  po.overrides = overrides;
  po.seeds = *seeds;
  po.name = absl::GetFlag(FLAGS_as);
  po.out_dir = absl::GetFlag(FLAGS_out_dir);
  absl::StatusOr<ComparisonPlan> plan = PlanComparison(*file, po);
  if (!plan.ok()) {
    std::fprintf(stderr, "%s\n", std::string(plan.status().message()).c_str());
    return 1;
  }

  // What is there already: finished runs of the same scenario are reused.
  const bool force = absl::GetFlag(FLAGS_force);
  std::vector<size_t> pending;
  size_t reused = 0;
  for (size_t i = 0; i < plan->runs.size(); ++i) {
    const PlannedRun& run = plan->runs[i];
    const RunInspection what = InspectRun(run);
    std::string verdict;
    if (what.state == RunState::kFinished && !force) {
      ++reused;
      verdict = "reuse";
    } else {
      pending.push_back(i);
      verdict = what.state == RunState::kMissing
                    ? "run"
                    : absl::StrCat("redo (", force ? "--force" : what.why, ")");
    }
    if (absl::GetFlag(FLAGS_dry_run)) {
      std::printf("%-40s %s\n  %s\n", absl::StrCat(run.arm, " seed ", run.seed).c_str(),
                  verdict.c_str(), RunCommandLine(*plan, run).c_str());
    } else if (what.state != RunState::kMissing && verdict != "reuse") {
      std::fprintf(stderr, "fedsim compare: %s seed %llu: %s\n", run.arm.c_str(),
                   static_cast<unsigned long long>(run.seed), verdict.c_str());
    }
  }
  if (absl::GetFlag(FLAGS_dry_run)) return 0;

  std::error_code ec;
  fs::create_directories(plan->dir, ec);
  if (ec) {
    std::fprintf(stderr, "fedsim compare: cannot create %s: %s\n", plan->dir.c_str(),
                 ec.message().c_str());
    return 1;
  }
  if (absl::Status s = WriteTextFile(plan->dir + "/comparison.json", PlanJson(*plan)); !s.ok()) {
    std::fprintf(stderr, "fedsim compare: %s\n", std::string(s.message()).c_str());
    return 1;
  }
  for (size_t i : pending) {
    if (absl::Status s = ClearRun(plan->runs[i]); !s.ok()) {
      std::fprintf(stderr, "fedsim compare: %s\n", std::string(s.message()).c_str());
      return 1;
    }
  }
  const int cores = std::max(1u, std::thread::hardware_concurrency());
  const int parallel = absl::GetFlag(FLAGS_parallel) > 0 ? absl::GetFlag(FLAGS_parallel) : cores;
  const int active = std::max<int>(1, std::min<int>(parallel, pending.size()));
  const int slots =
      absl::GetFlag(FLAGS_slots) > 0 ? absl::GetFlag(FLAGS_slots) : std::max(1, cores / active);
  std::fprintf(stderr,
               "fedsim compare: %s: %d arms x %d seeds = %zu runs (%zu reused, %zu to run), %d "
               "at a time, %d training threads each; results in %s\n",
               plan->file.spec.name().c_str(), plan->file.spec.arms_size(),
               plan->file.spec.seeds_size(), plan->runs.size(), reused, pending.size(), parallel,
               slots, plan->dir.c_str());
  InstallStopSignalHandlers();
  const absl::Time start = SystemClock()->Now();
  Scheduler scheduler(*plan, pending, parallel, slots, slots, SystemClock());
  if (!scheduler.Run()) {
    std::fprintf(stderr,
                 "fedsim compare: interrupted; finished runs are kept, rerun the same command to "
                 "resume\n");
    return 130;
  }
  const double wall = absl::ToDoubleSeconds(SystemClock()->Now() - start);
  absl::StatusOr<std::string> md = Summarize(*plan, scheduler.failures());
  if (!md.ok()) {
    std::fprintf(stderr, "fedsim compare: %s\n", std::string(md.status().message()).c_str());
    return 1;
  }
  std::printf("%s\n", md->c_str());
  std::fprintf(stderr,
               "fedsim compare: %zu runs in %.1f s wall (%d at a time); %s/summary.md, "
               "%s/summary.csv; 'fedsim report %s' draws the curves\n",
               pending.size(), wall, parallel, plan->dir.c_str(), plan->dir.c_str(),
               plan->dir.c_str());
  if (!scheduler.failures().empty()) {
    std::fprintf(stderr, "fedsim compare: %zu of %zu runs failed (see above and summary.md)\n",
                 scheduler.failures().size(), plan->runs.size());
    return 1;
  }
  return 0;
}

}  // namespace fedsim
