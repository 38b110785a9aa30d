#include "config/validate.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <string>

#include "absl/strings/str_cat.h"
#include "algorithms/registry.h"
#include "config/fleet.h"
#include "config/memory.h"
#include "config/model_config.h"
#include "config/scenario_file.h"
#include "runtime/local_recipe.h"
#include "runtime/robust_recipe.h"
#include "util/checks.h"

namespace fedsim {
bool ValidScenarioNameChar(char c) {
  return std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' || c == '.';
}

RuleCheckContext RuleCheckContextFor(const config::Scenario& scenario,
                                     const std::string& scenario_dir) {
  return RuleCheckContext{
      .num_clients = scenario.num_clients(), .seed = scenario.seed(), .scenario_dir = scenario_dir};
}

std::vector<std::string> AlgorithmNotesFor(const config::Scenario& scenario,
                                           const std::string& scenario_dir) {
  absl::StatusOr<const AlgorithmEntry*> entry = EntryFor(scenario.algorithm());
  if (!entry.ok() || (*entry)->notes == nullptr) return {};
  return (*entry)->notes(scenario.algorithm(), RuleCheckContextFor(scenario, scenario_dir));
}

void CollectScenarioProblems(const config::Scenario& s, ProblemList* problems,
                             const std::string& scenario_dir) {
  ProblemList& p = *problems;
  const uint32_t n = s.num_clients();

  // Identity.
  if (s.name().empty()) {
    p.Add("name", "is empty; it names the output folder, set e.g. name: \"my_run\"");
  } else if (!std::all_of(s.name().begin(), s.name().end(), ValidScenarioNameChar) ||
             s.name() == "." || s.name() == "..") {
    p.Add("name", absl::StrCat("'", s.name(),
                               "' may contain only letters, digits, '-', '_' and '.' (it names "
                               "the folder <output.dir>/<name>/); rename it"));
  }
  if (n == 0) {
    p.Add("num_clients", "must be > 0, got 0; set the number of virtual clients, e.g. 100");
  }

  // Data and partition.
  if (s.dataset().has_synthetic()) {
    const auto& syn = s.dataset().synthetic();
    CheckNonNegative(syn.alpha(), "dataset.synthetic.alpha", "it is a standard deviation",
                     problems);
    CheckNonNegative(syn.beta(), "dataset.synthetic.beta", "it is a standard deviation", problems);
    if (syn.examples_per_client() == 1) {
      p.Add("dataset.synthetic.examples_per_client",
            "1 leaves no room for a train/test split; use 0 (drawn sizes) or >= 2");
    }
  }
  const auto& part = s.partition();
  if (part.has_dirichlet()) {
    CheckPositive(part.dirichlet().alpha(), "partition.dirichlet.alpha",
                  "smaller alpha means stronger label skew; 0.1 .. 1 are typical", problems);
  }
  if (part.has_label_mix()) {
    CheckPositive(part.label_mix().alpha(), "partition.label_mix.alpha",
                  "smaller alpha means stronger label skew; Wang & Ji use 0.1", problems);
  }
  if (part.has_shards() && part.shards().shards_per_client() == 0) {
    p.Add("partition.shards.shards_per_client", "must be >= 1, got 0; McMahan's setting is 2");
  }
  if (part.has_natural() && !s.dataset().has_synthetic()) {
    p.Add("partition.natural",
          "only Synthetic data comes split per client; use iid, dirichlet, label_mix or "
          "shards for this dataset");
  }

  // Model.
  ValidateModel(s.model(), ScenarioModelInput(s).shape, problems);
  if (s.has_numeric()) ValidateNumeric(s.numeric(), problems);

  // Devices.
  ValidateDevices(s.devices(), n, problems);

  // Algorithm: the rule's own validator, through its registry row.
  if (s.algorithm().rule_case() == config::Algorithm::RULE_NOT_SET) {
    p.Add("algorithm", absl::StrCat("no rule chosen; set e.g. algorithm { ",
                                    std::string(DefaultAlgorithm().name), " {} }"));
  } else if (absl::StatusOr<const AlgorithmEntry*> entry = EntryFor(s.algorithm()); !entry.ok()) {
    p.Add("algorithm", std::string(entry.status().message()));
  } else {
    (*entry)->validate(s.algorithm(), RuleCheckContextFor(s, scenario_dir), problems);
  }

  // Participation.
  ValidateParticipation(s.participation(), n, problems);

  // Scripted events.
  for (int i = 0; i < s.events_size(); ++i) {
    const auto& e = s.events(i);
    const std::string base = absl::StrCat("events[", i, "]");
    if (!e.has_at_s()) {
      p.Add(base, "has no at_s; give the virtual time in seconds when it happens");
    } else if (!(e.at_s() >= 0) || std::isinf(e.at_s())) {
      p.Add(base + ".at_s", absl::StrCat(NumberText(e.at_s()),
                                         " is not a time >= 0; events happen at "
                                         "virtual times from 0 on"));
    }
    for (int k = 0; k < e.clients_size(); ++k) {
      if (e.clients(k) >= n) {
        p.Add(absl::StrCat(base, ".clients[", k, "]"),
              absl::StrCat("client ", e.clients(k), " does not exist (clients are 0 .. ",
                           n == 0 ? 0 : n - 1, "); fix the id or raise num_clients"));
      }
    }
    if (e.kind_case() == config::ScriptedEvent::KIND_NOT_SET) {
      p.Add(base, "says nothing happens; set one of join, leave or dropout to true");
    }
  }

  // Local training.
  const auto& local = s.local();
  if (local.epochs() == 0 && local.steps() == 0) {
    p.Add("local.epochs",
          "epochs and steps are both 0, so a task would do nothing; set "
          "epochs >= 1 or steps >= 1");
  }
  if (local.batch_size() == 0) p.Add("local.batch_size", "must be > 0, got 0; e.g. 10");
  CheckPositive(local.lr(), "local.lr", "e.g. 0.1", problems);
  if (!(local.momentum() >= 0 && local.momentum() < 1)) {
    p.Add("local.momentum", absl::StrCat(NumberText(local.momentum()),
                                         " is outside [0, 1); use 0 for plain SGD or e.g. 0.9"));
  }
  CheckNonNegative(local.weight_decay(), "local.weight_decay", "use 0 for off", problems);
  CheckNonNegative(local.prox_mu(), "local.prox_mu", "use 0 for off", problems);
  if (local.has_sam()) {
    CheckPositive(local.sam().rho(), "local.sam.rho",
                  "it is the radius of SAM's ascent step, e.g. 0.05", problems);
  }
  if (local.has_adversarial()) {
    ValidateAdversarial(local.adversarial(), "local.adversarial", problems);
  }

  // Stop and evaluation.
  const auto& stop = s.stop();
  if (stop.max_commits() == 0 && stop.max_virtual_s() == 0 && stop.target_accuracy() == 0) {
    p.Add("stop",
          "has no condition, so the run would never end; set max_commits, "
          "max_virtual_s or target_accuracy (whichever comes first stops the run)");
  }
  CheckNonNegative(stop.max_virtual_s(), "stop.max_virtual_s", "use 0 for no time limit", problems);
  if (stop.target_accuracy() != 0 && !(stop.target_accuracy() > 0 && stop.target_accuracy() <= 1)) {
    p.Add("stop.target_accuracy",
          absl::StrCat(NumberText(stop.target_accuracy()),
                       " is outside (0, 1]; accuracy is a fraction, e.g. 0.8 (0 = not used)"));
  }
  const auto& eval = s.eval();
  CheckNonNegative(eval.every_virtual_s(), "eval.every_virtual_s", "use 0 for not by time",
                   problems);
  if (eval.has_robust()) ValidateRobust(eval.robust(), "eval.robust", problems);
  if (stop.target_accuracy() > 0 && eval.every_commits() == 0 && eval.every_virtual_s() == 0) {
    p.Add("stop.target_accuracy",
          "is set but evaluation never runs (eval.every_commits and eval.every_virtual_s are "
          "0), so it could never be reached; set eval.every_commits: 1");
  }

  // Recorded schedule (the files themselves are read by PrepareRun).
  if (s.has_schedule()) {
    const auto& sch = s.schedule();
    const bool has_events = !sch.events().empty();
    const bool has_csv = !sch.durations_csv().empty();
    if (has_events && has_csv) {
      p.Add("schedule.durations_csv",
            "is set together with schedule.events; give one of them (events.jsonl brings "
            "durations and availability, the CSV durations only)");
    } else if (!has_events && !has_csv) {
      p.Add("schedule",
            "is empty; set schedule.events to a recorded run's events.jsonl (or its run "
            "folder), or schedule.durations_csv to a CSV client,task_index,duration_s");
    }
  }

  // Clock and output.
  CheckNonNegative(s.clock().time_scale(), "clock.time_scale", "use 0 for no sleeping", problems);
  if (s.clock().mode() == config::Clock::MODE_UNSPECIFIED) {
    p.Add("clock.mode", "is unspecified; use VIRTUAL or WALL");
  }
  if (s.has_deployment()) {
    const config::Deployment& d = s.deployment();
    if (!(d.eval_timeout_s() > 0) || !std::isfinite(d.eval_timeout_s())) {
      p.Add("deployment.eval_timeout_s", absl::StrCat("is ", d.eval_timeout_s(),
                                                      "; give the seconds a federated evaluation "
                                                      "waits for the clients' answers, e.g. 60"));
    }
    if (!(d.start_timeout_s() > 0) || !std::isfinite(d.start_timeout_s())) {
      p.Add("deployment.start_timeout_s", absl::StrCat("is ", d.start_timeout_s(),
                                                       "; give the seconds the server waits for "
                                                       "the clients at the start, e.g. 600"));
    }
    if (d.admit_clients() && d.has_clients_file()) {
      p.Add("deployment.admit_clients",
            "is set together with deployment.clients_file; give one: a list names the clients "
            "in advance, admission takes them as they register");
    }
    if (d.admit_clients() && d.central_test_set()) {
      p.Add("deployment.central_test_set",
            "cannot be used with deployment.admit_clients: admitted clients bring data the "
            "server does not know in advance; use a client list (fedsim split's index.csv)");
    }
    if (d.start_with_clients() > s.num_clients()) {
      p.Add("deployment.start_with_clients",
            absl::StrCat("is ", d.start_with_clients(), ", more than the run's ", s.num_clients(),
                         " clients; use at most num_clients (0 = all)"));
    }
  }
  if (s.output().dir().empty()) {
    p.Add("output.dir", "is empty; give a folder for runs, e.g. \"runs\"");
  }

  // Memory, last: it needs a model and a rule that resolve.
  CheckMemoryBudget(s, problems);
}

absl::Status ValidateScenario(const config::Scenario& scenario, const SourceMap* sources) {
  ProblemList problems;
  // A file's relative paths are relative to its folder.
  const std::string dir =
      sources != nullptr && !sources->file().empty() ? ScenarioDir(sources->file()) : ".";
  CollectScenarioProblems(scenario, &problems, dir);
  return LocatedStatus(problems, sources);
}

}  // namespace fedsim
