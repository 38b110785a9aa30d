#include "sim/runner.h"

#include <filesystem>
#include <limits>
#include <new>
#include <numeric>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "algorithms/registry.h"
#include "config/memory.h"
#include "config/scenario_file.h"
#include "config/validate.h"
#include "ml/numeric.h"
#include "runtime/robust_recipe.h"
#include "sim/checkpoint.h"
#include "sim/evaluator.h"
#include "sim/inprocess_transport.h"
#include "sim/run_output.h"
#include "util/build_info.h"
#include "util/file.h"
#include "util/rng.h"
#include "util/status_macros.h"

namespace fedsim {
namespace {

std::vector<ScriptedChange> ScriptedChanges(const config::Scenario& s) {
  std::vector<ScriptedChange> out;
  for (const config::ScriptedEvent& e : s.events()) {
    ScriptedChange::Kind kind = ScriptedChange::Kind::kJoin;
    if (e.has_leave()) kind = ScriptedChange::Kind::kLeave;
    if (e.has_dropout()) kind = ScriptedChange::Kind::kDropout;
    for (uint32_t c : e.clients()) out.push_back(ScriptedChange{e.at_s(), c, kind});
  }
  return out;
}

// Keeps the named figures of the last evaluation row.
class LastFiguresObserver : public RunObserver {
 public:
  explicit LastFiguresObserver(std::vector<std::string> names) : names_(std::move(names)) {}
  void OnEvaluation(const MetricsRow& row) override {
    figures_.clear();
    for (const std::string& name : names_) {
      if (auto it = row.values.find(name); it != row.values.end()) {
        figures_.emplace_back(name, it->second);
      }
    }
  }
  const std::vector<std::pair<std::string, double>>& figures() const { return figures_; }

 private:
  std::vector<std::string> names_;
  std::vector<std::pair<std::string, double>> figures_;
};

std::string AlgorithmName(const config::Algorithm& a) {
  for (const AlgorithmEntry& e : RegisteredAlgorithms()) {
    if (e.rule == a.rule_case()) return std::string(e.name);
  }
  return "unknown";
}

constexpr char kScenarioDirComment[] = "# scenario_dir: ";

// Recorded absolute, so a run folder resumes from any working directory.
std::string AbsolutePath(const std::string& dir) {
  std::error_code ec;
  std::filesystem::path p = std::filesystem::absolute(dir.empty() ? "." : dir, ec);
  if (ec) return dir;
  std::string out = p.lexically_normal().string();
  if (out.size() > 1 && out.back() == '/') out.pop_back();
  return out;
}

// The checkpoint a resumed run continues from, checked against the run.
absl::StatusOr<ckpt::EngineState> ResumeState(const std::string& run_dir,
                                              const std::string& scenario_hash, FILE* progress) {
  FEDSIM_ASSIGN_OR_RETURN(LoadedCheckpoint loaded, LoadLatestCheckpoint(run_dir));
  if (!loaded.warning.empty() && progress != nullptr) {
    std::fprintf(progress, "warning: %s\n", loaded.warning.c_str());
  }
  const ckpt::EngineState& state = loaded.state;
  if (state.scenario_hash() != scenario_hash) {
    return absl::FailedPreconditionError(absl::StrCat(
        loaded.path, " belongs to another scenario (hash ", state.scenario_hash(), ", this run's ",
        scenario_hash, "): resume with the folder's own scenario.textproto"));
  }
  if (state.build_id() != std::string(BuildId())) {
    return absl::FailedPreconditionError(
        absl::StrCat(loaded.path, " was written by build ", state.build_id(), ", this is build ",
                     std::string(BuildId()), ": resume it with the build that wrote it"));
  }
  if (state.finished()) {
    return absl::FailedPreconditionError(
        absl::StrCat("the run in ", run_dir, " already finished (", state.stop_reason(),
                     " at version ", state.version(), "); there is nothing to resume"));
  }
  if (progress != nullptr) {
    // Each task in flight at the checkpoint is dispatched again (and a worker
    // still holding one of them gets its result refused as unknown).
    std::string tasks;
    for (const ckpt::InFlightTask& t : state.in_flight()) {
      if (t.lost()) continue;
      absl::StrAppend(&tasks, tasks.empty() ? "" : ", ", t.id(), " (client ", t.client(), ")");
    }
    std::fprintf(progress,
                 "resuming %s from %s: version %llu, virtual time %g; tasks in flight there, "
                 "dispatched again: %s\n",
                 run_dir.c_str(), loaded.path.c_str(),
                 static_cast<unsigned long long>(state.version()), state.now(),
                 tasks.empty() ? "none" : tasks.c_str());
  }
  return state;
}

}  // namespace

absl::StatusOr<RunScenario> LoadRunScenario(const std::string& run_dir) {
  const std::string path = run_dir + "/scenario.textproto";
  absl::StatusOr<std::string> read = ReadFileToString(path);
  if (!read.ok()) {
    return absl::Status(read.status().code(),
                        absl::StrCat(read.status().message(),
                                     "; give the folder of a run written by fedsim run or "
                                     "fedsim server"));
  }
  const std::string& text = *read;
  RunScenario out;
  out.scenario_dir = ".";
  if (absl::StartsWith(text, kScenarioDirComment)) {
    const size_t end = text.find('\n');
    out.scenario_dir =
        text.substr(sizeof(kScenarioDirComment) - 1, end - (sizeof(kScenarioDirComment) - 1));
  }
  FEDSIM_ASSIGN_OR_RETURN(out.scenario, ParseScenarioText(text, path, {}));
  return out;
}

absl::StatusOr<RunScenario> LoadScenarioToRun(const std::string& path,
                                              const std::vector<std::string>& overrides,
                                              const std::string& resume_dir) {
  if (!resume_dir.empty()) return LoadRunScenario(resume_dir);
  RunScenario out;
  FEDSIM_ASSIGN_OR_RETURN(out.scenario, LoadScenario(path, overrides));
  out.scenario_dir = ScenarioDir(path);
  return out;
}

namespace {

// What memory running out in PrepareRun or ExecuteRun becomes: an error with
// the estimate that validation checks, never an uncaught std::bad_alloc.
absl::Status OutOfMemory(const config::Scenario& s, const char* during) {
  absl::StatusOr<MemoryEstimate> e = EstimateMemory(s);
  return absl::ResourceExhaustedError(absl::StrCat(
      "out of memory ", during, " a run of ", s.num_clients(), " clients",
      e.ok() ? absl::StrCat(" (estimated need: ", FormatBytes(e->total_bytes()), ")") : "",
      "; lower num_clients, or set limits.memory_budget_mb to this machine's memory so that "
      "validation refuses what does not fit"));
}

absl::StatusOr<std::unique_ptr<PreparedRun>> PrepareRunOrThrow(const config::Scenario& resolved,
                                                               const std::string& scenario_dir,
                                                               std::optional<RunData> given) {
  auto run = std::make_unique<PreparedRun>();
  run->scenario = resolved;
  run->scenario_dir = scenario_dir;
  const bool has_examples = !given.has_value();
  if (given.has_value()) {
    run->data = std::make_unique<RunData>(*std::move(given));
  } else {
    FEDSIM_ASSIGN_OR_RETURN(RunData data, BuildRunData(resolved, scenario_dir));
    run->data = std::make_unique<RunData>(std::move(data));
  }
  if (!has_examples && resolved.participation().probability().has_label_correlated()) {
    return absl::FailedPreconditionError(
        "participation.probability.label_correlated needs every client's labels, which a "
        "server without the clients' data does not have; use another participation "
        "probability with deployment.clients_file, or set deployment.central_test_set so that "
        "the server loads the scenario's dataset");
  }
  FEDSIM_ASSIGN_OR_RETURN(run->profiles, BuildDeviceProfiles(resolved, scenario_dir));
  // Label histograms only for the generator that reads them: for generated
  // client data, counting them generates every client once.
  std::vector<std::vector<double>> label_distributions;
  if (resolved.participation().probability().has_label_correlated()) {
    FEDSIM_ASSIGN_OR_RETURN(label_distributions, LabelDistributions(*run->data));
  }
  FEDSIM_ASSIGN_OR_RETURN(
      run->participation,
      ParticipationModel::Create(resolved.participation(), resolved.num_clients(),
                                 label_distributions, resolved.seed(), scenario_dir));
  if (resolved.has_schedule()) {
    FEDSIM_ASSIGN_OR_RETURN(
        TraceSchedule schedule,
        LoadSchedule(resolved.schedule(), resolved.num_clients(), scenario_dir));
    if (schedule.windows.has_value()) {
      // The recorded availability replaces the process on the time axis;
      // the oracle probabilities p_i stay the scenario's.
      std::vector<double> p(resolved.num_clients());
      for (size_t i = 0; i < p.size(); ++i) {
        p[i] = run->participation->probability(static_cast<ClientId>(i));
      }
      for (ClientId c : schedule.open_availability) {
        if (run->participation->AvailableAt(c, 0.0)) {
          (*schedule.windows)[c].emplace_back(0.0, std::numeric_limits<double>::infinity());
        }
      }
      FEDSIM_ASSIGN_OR_RETURN(run->participation, ParticipationModel::FromWindows(
                                                      std::move(*schedule.windows), std::move(p),
                                                      resolved.participation().round_s()));
      schedule.windows.reset();
    }
    run->schedule = std::make_unique<const TraceSchedule>(std::move(schedule));
  }
  FEDSIM_ASSIGN_OR_RETURN(std::unique_ptr<Model> model, NewModel(run->data->model));
  run->num_params = model->NumParams();
  run->initial_params.resize(run->num_params);
  model->Init(Rng(resolved.seed(), "init").NextU64(), run->initial_params);
  return run;
}

absl::StatusOr<RunOutcome> ExecuteRunOrThrow(const PreparedRun& run, Transport* transport,
                                             ModelStore* store, const RunOptions& options) {
  const config::Scenario& s = run.scenario;
  const RunData& data = *run.data;

  AlgorithmContext ctx;
  ctx.num_clients = s.num_clients();
  ctx.num_params = run.num_params;
  ctx.seed = s.seed();
  ctx.scenario_dir = run.scenario_dir;
  FEDSIM_ASSIGN_OR_RETURN(std::unique_ptr<Algorithm> algorithm, NewAlgorithm(s.algorithm(), ctx));

  EngineConfig ec;
  ec.seed = s.seed();
  uint64_t total = 0;
  for (uint32_t rows : data.client_rows) total += rows;
  ec.clients.resize(s.num_clients());
  for (size_t i = 0; i < ec.clients.size(); ++i) {
    ec.clients[i].num_examples = data.client_rows[i];
    ec.clients[i].importance =
        total > 0 ? static_cast<double>(data.client_rows[i]) / static_cast<double>(total)
                  : 1.0 / ec.clients.size();
  }
  ec.profiles = run.profiles;
  ec.examples_per_task = data.examples_per_task;
  ec.jitter_sigma = s.devices().jitter_sigma();
  ec.local = s.local();
  ec.eval_client_sample = s.eval().client_sample();
  ec.initial_params = run.initial_params;
  ec.max_commits = s.stop().max_commits();
  ec.max_virtual_s = s.stop().max_virtual_s();
  ec.target_accuracy = s.stop().target_accuracy();
  ec.eval_every_commits = s.eval().every_commits();
  ec.eval_every_virtual_s = s.eval().every_virtual_s();
  ec.wall_clock = s.clock().mode() == config::Clock::WALL;
  ec.participation = run.participation.get();
  ec.scripted = ScriptedChanges(s);
  // Outlives the engine, which calls it through ec.duration_override.
  std::optional<ScheduleCursor> cursor;
  if (run.schedule != nullptr) {
    cursor.emplace(run.schedule.get());
    const std::vector<ClientId> missing = run.schedule->ClientsWithoutDurations();
    if (!missing.empty() && options.progress != nullptr) {
      std::fprintf(options.progress,
                   "warning: schedule %s has no recorded task for %zu of %u clients; if "
                   "dispatched, their tasks take the device model's durations\n",
                   run.schedule->source.c_str(), missing.size(), s.num_clients());
    }
  }
  if (cursor.has_value() || options.duration_override) {
    ec.duration_override = [&cursor, replay = options.duration_override](
                               TaskId id, ClientId client) -> std::optional<double> {
      std::optional<double> from_schedule;
      if (cursor.has_value()) from_schedule = cursor->Next(client);
      if (replay) {
        if (std::optional<double> d = replay(id, client)) return d;
      }
      return from_schedule;
    };
  }
  ec.interrupt = options.interrupt;
  ec.clock = options.clock;
  // Federated evaluation asks the workers; a decentralized rule's client
  // models (and so its last checkpoint) live on them.
  ec.release_workers_at_stop = options.federated_eval.empty() && !s.algorithm().has_decentralized();

  std::optional<RobustEvalPlan> robust;
  if (s.eval().has_robust()) robust = RobustEvalFromConfig(s.eval().robust(), s.seed());
  FEDSIM_ASSIGN_OR_RETURN(std::unique_ptr<Evaluator> evaluator,
                          Evaluator::Create(data.model, data.test.get(), s.eval().test_limit(),
                                            options.eval_threads, std::move(robust)));

  const std::string scenario_hash = ScenarioHash(s);
  std::string run_dir = options.run_dir;
  std::optional<ckpt::EngineState> resume;
  std::unique_ptr<RunWriter> writer;
  if (!options.resume_dir.empty()) {
    run_dir = options.resume_dir;
    FEDSIM_ASSIGN_OR_RETURN(resume, ResumeState(run_dir, scenario_hash, options.progress));
    if (cursor.has_value()) {
      // Client i's k-th task takes the k-th recorded duration: skip the ones
      // already dispatched.
      for (int k = 0; k < resume->dispatched_clients_size(); ++k) {
        const ClientId c = resume->dispatched_clients(k);
        for (uint64_t j = 0; j < resume->dispatch_counts(k); ++j) cursor->Next(c);
      }
    }
    const OutputOffsets at{resume->events_bytes(), resume->metrics_bytes(), resume->timing_bytes()};
    FEDSIM_ASSIGN_OR_RETURN(writer, RunWriter::Open(run_dir, &at));
    ec.resume_from = &*resume;
  } else {
    if (run_dir.empty()) {
      FEDSIM_ASSIGN_OR_RETURN(
          run_dir,
          MakeRunDir(options.out_dir.empty() ? s.output().dir() : options.out_dir, s.name()));
    } else {
      FEDSIM_RETURN_IF_ERROR(MakeExactRunDir(run_dir));
    }
    FEDSIM_RETURN_IF_ERROR(
        WriteTextFile(run_dir + "/scenario.textproto",
                      absl::StrCat(kScenarioDirComment, AbsolutePath(run.scenario_dir), "\n",
                                   ScenarioToText(s))));
    for (const auto& [name, text] : options.extra_files) {
      FEDSIM_RETURN_IF_ERROR(WriteTextFile(run_dir + "/" + name, text));
    }
    FEDSIM_ASSIGN_OR_RETURN(writer, RunWriter::Open(run_dir));
  }
  writer->set_real_durations(ec.wall_clock);
  ec.checkpoint_every_commits = options.checkpoint_every_commits;
  ec.checkpoint_sink = [&run_dir, &scenario_hash](const ckpt::EngineState& state) {
    ckpt::EngineState stamped = state;
    stamped.set_scenario_hash(scenario_hash);
    stamped.set_build_id(std::string(BuildId()));
    return WriteCheckpoint(run_dir, stamped);
  };

  FanOutObserver fan;
  fan.Add(writer.get());
  std::unique_ptr<ProgressReporter> progress;
  if (options.progress != nullptr) {
    progress = std::make_unique<ProgressReporter>(options.progress, options.terminal,
                                                  s.stop().max_commits(), s.stop().max_virtual_s(),
                                                  options.clock, options.progress_suffix);
    fan.Add(progress.get());
  }
  for (RunObserver* o : options.observers) fan.Add(o);
  // The evaluator's own figures at the last evaluation, for the manifest.
  std::unique_ptr<FederatedEvaluator> federated;
  EvaluatorInterface* evaluate = evaluator.get();
  if (!options.federated_eval.empty()) {
    // Without a test set of its own the server's figures are the clients'.
    FederatedEvalOptions fo;
    fo.wall_clock = s.clock().mode() == config::Clock::WALL;
    fo.answer_timeout = absl::Seconds(s.deployment().eval_timeout_s());
    fo.clock = options.clock;
    federated = std::make_unique<FederatedEvaluator>(
        transport, store, options.federated_eval,
        data.test != nullptr && data.test->size() > 0 ? evaluator.get() : nullptr, fo);
    evaluate = federated.get();
  }
  LastFiguresObserver last(evaluate->ExtraMetricNames());
  fan.Add(&last);

  Engine engine(std::move(ec), algorithm.get(), transport, store, evaluate, &fan);
  absl::StatusOr<RunSummary> summary = engine.Run();
  absl::Status closed = writer->Close();
  if (!summary.ok()) {
    return absl::Status(
        summary.status().code(),
        absl::StrCat(summary.status().message(), " [partial results in ", run_dir, "]"));
  }
  FEDSIM_RETURN_IF_ERROR(closed);

  RunOutcome out;
  out.summary = *summary;
  out.run_dir = run_dir;
  out.final_model = engine.global_model();
  if (s.output().save_final_model()) {
    FEDSIM_RETURN_IF_ERROR(
        WriteFinalModel(run_dir + "/final_model.bin", out.final_model, summary->final_version));
  }
  ManifestInfo m;
  m.name = s.name();
  m.scenario_hash = scenario_hash;
  m.seed = s.seed();
  m.build_id = std::string(BuildId());
  m.numeric_fingerprint = NumericFingerprint(data.model);
  m.num_params = run.num_params;
  m.model = data.model.ToString();
  m.algorithm = AlgorithmName(s.algorithm());
  m.algorithm_notes = AlgorithmNotesFor(s, run.scenario_dir);
  m.transport = options.transport_name;
  m.backends = transport->Backends();
  if (evaluator->robust_plan().has_value()) {
    m.robust_eval = RobustEvalPlanName(*evaluator->robust_plan());
  }
  m.final_figures = last.figures();
  FEDSIM_RETURN_IF_ERROR(WriteManifest(run_dir + "/manifest.json", m, *summary));
  return out;
}

}  // namespace

absl::StatusOr<std::unique_ptr<PreparedRun>> PrepareRun(const config::Scenario& resolved,
                                                        const std::string& scenario_dir,
                                                        std::optional<RunData> data) {
  try {
    return PrepareRunOrThrow(resolved, scenario_dir, std::move(data));
  } catch (const std::bad_alloc&) {
    return OutOfMemory(resolved, "preparing");
  }
}

absl::StatusOr<RunOutcome> ExecuteRun(const PreparedRun& run, Transport* transport,
                                      ModelStore* store, const RunOptions& options) {
  try {
    return ExecuteRunOrThrow(run, transport, store, options);
  } catch (const std::bad_alloc&) {
    return OutOfMemory(run.scenario, "executing");
  }
}

absl::StatusOr<RunOutcome> RunInProcess(const PreparedRun& run, int slots,
                                        const RunOptions& options) {
  ModelStore store;
  TaskRunner runner(run.data.get(), ClientCacheBytes(run.scenario.limits().memory_budget_mb()),
                    TaskDevice{options.device, slots});
  InProcessOptions io;
  io.slots = slots;
  io.time_scale =
      run.scenario.clock().mode() == config::Clock::WALL ? run.scenario.clock().time_scale() : 0.0;
  io.clock = options.clock;
  io.pre_aggregate = !options.device.is_gpu_backend();
  std::unique_ptr<Transport> transport = NewInProcessTransport(&runner, &store, io);
  RunOptions o = options;
  if (o.transport_name == "inprocess")
    o.transport_name = absl::StrCat("inprocess, ", slots, " slots");
  absl::StatusOr<RunOutcome> out = ExecuteRun(run, transport.get(), &store, o);
  transport->Shutdown();
  return out;
}

}  // namespace fedsim
