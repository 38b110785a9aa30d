#include "tools/run_common.h"

#include <csignal>
#include <cstdio>
#include <filesystem>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "config/model_config.h"
#include "runtime/client_split.h"
#include "runtime/model_setup.h"
#include "util/status_macros.h"

namespace fedsim {

std::atomic<bool> g_interrupted{false};
std::atomic<int> g_signal{0};

namespace {
void OnSignal(int sig) {
  g_signal.store(sig);
  g_interrupted.store(true);
}
}  // namespace

void InstallStopSignalHandlers() {
  struct sigaction sa = {};
  sa.sa_handler = OnSignal;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGINT, &sa, nullptr);
  sigaction(SIGTERM, &sa, nullptr);
}

void PrintSummary(const RunOutcome& o) {
  const RunSummary& s = o.summary;
  std::printf(
      "run finished (%s): %llu commits, virtual time %.2f s, %llu updates applied, %llu "
      "dropped, test accuracy %.4f, loss %.4f, wall %.1f s\n"
      "final model sha256 %s\nresults in %s\n",
      s.stop_reason.c_str(), static_cast<unsigned long long>(s.final_version), s.virtual_time,
      static_cast<unsigned long long>(s.updates_applied),
      static_cast<unsigned long long>(s.updates_dropped), s.final_accuracy, s.final_loss, s.wall_s,
      s.final_model_hash.c_str(), o.run_dir.c_str());
  std::fflush(stdout);
}

void SetNumericIdentity(const config::Scenario& scenario, GrpcServerOptions* options) {
  options->numeric_mode = NumericModeName(scenario.numeric());
  options->numeric_fingerprint = OwnNumericFingerprints()[options->numeric_mode];
}

absl::StatusOr<std::optional<std::vector<SplitClient>>> LoadClientList(
    const config::Scenario& scenario, const std::string& scenario_dir,
    const std::string& resume_dir) {
  std::filesystem::path path;
  if (scenario.deployment().admit_clients() && !resume_dir.empty()) {
    path = std::filesystem::path(resume_dir) / kAdmittedClientsFile;
  } else if (scenario.deployment().has_clients_file()) {
    path = scenario.deployment().clients_file();
    if (path.is_relative()) path = std::filesystem::path(scenario_dir) / path;
  } else {
    return std::nullopt;
  }
  absl::StatusOr<std::vector<SplitClient>> list =
      ReadClientList(path.string(), scenario.num_clients());
  if (!list.ok()) {
    return absl::Status(
        list.status().code(),
        absl::StrCat(scenario.deployment().admit_clients() ? "the resumed run's admitted clients: "
                                                           : "deployment.clients_file: ",
                     list.status().message()));
  }
  return std::optional<std::vector<SplitClient>>(*std::move(list));
}

absl::StatusOr<std::optional<RunData>> ServerDataFromClientList(
    const config::Scenario& scenario, const std::optional<std::vector<SplitClient>>& list) {
  if (!list.has_value() || scenario.deployment().central_test_set()) return std::nullopt;
  FEDSIM_ASSIGN_OR_RETURN(ModelConfig model, ModelConfigForScenario(scenario));
  return std::optional<RunData>(RunDataFromClientList(model, *list, scenario.local()));
}

absl::Status SetLocalClients(const config::Scenario& scenario,
                             const std::optional<std::vector<SplitClient>>& list,
                             GrpcServerOptions* options, std::vector<FederatedClient>* federated) {
  if (!list.has_value()) return absl::OkStatus();
  options->local_client_names.clear();
  for (size_t i = 0; i < list->size(); ++i) {
    const SplitClient& c = (*list)[i];
    if (i < options->client_examples.size() && c.train_rows != options->client_examples[i]) {
      return absl::InvalidArgumentError(absl::StrCat(
          "deployment.clients_file ", scenario.deployment().clients_file(), ": client ", i, " ('",
          c.name, "') has ", c.train_rows, " training rows there, but ",
          options->client_examples[i],
          " in this scenario's data; was the list written by 'fedsim split' of this scenario?"));
    }
    options->local_client_names.push_back(c.name);
    federated->push_back(FederatedClient{static_cast<ClientId>(i), c.test_rows});
  }
  return absl::OkStatus();
}

std::vector<SplitClient> PlaceholderClientList(const config::Scenario& scenario) {
  return std::vector<SplitClient>(scenario.num_clients(), SplitClient{"", 1, 0});
}

std::vector<SplitClient> AdmittedClientList(const GrpcTransport& transport) {
  std::vector<SplitClient> list;
  for (const LocalClient& c : transport.LocalClients()) {
    list.push_back(SplitClient{c.name, c.train_examples, c.test_examples});
  }
  return list;
}

std::string FleetProgressText(const FleetStatus& fleet) {
  std::string text = " |";
  if (fleet.clients_total > 0) {
    absl::StrAppend(&text, " clients ", fleet.clients_connected, "/", fleet.clients_total, ",");
  } else {
    absl::StrAppend(&text, " workers ", fleet.workers_connected, ",");
  }
  absl::StrAppend(&text, " ", fleet.tasks_in_flight, " tasks in flight");
  if (fleet.tasks_pending > 0) absl::StrAppend(&text, " (", fleet.tasks_pending, " waiting)");
  if (!fleet.slowest_client.empty()) {
    absl::StrAppend(&text, ", slowest ", fleet.slowest_client,
                    absl::StrFormat(" %.1f s", fleet.slowest_s));
  }
  return text;
}

FleetTicker::FleetTicker(const GrpcTransport* transport, FILE* out, absl::Duration every) {
  thread_ = std::thread([this, transport, out, every] {
    absl::MutexLock lock(&mu_);
    while (!mu_.AwaitWithTimeout(absl::Condition(&stop_), every)) {
      const FleetStatus fleet = transport->fleet();
      // Half a period: a task leased just after a tick is reported at the next.
      const bool slow =
          fleet.tasks_in_flight > 0 && fleet.slowest_s >= 0.5 * absl::ToDoubleSeconds(every);
      if (!slow && fleet.clients_connected == fleet.clients_total) continue;
      // FleetProgressText's " | clients ..." without its separator.
      std::fprintf(out, "fedsim server: still training:%s\n",
                   FleetProgressText(fleet).substr(2).c_str());
      std::fflush(out);
    }
  });
}

FleetTicker::~FleetTicker() {
  {
    absl::MutexLock lock(&mu_);
    stop_ = true;
  }
  thread_.join();
}

absl::Status AwaitStartingClients(const config::Scenario& scenario, GrpcTransport* transport) {
  const config::Deployment& d = scenario.deployment();
  // Admission needs every client once (its n_i); a wall-clock run starts
  // with those that are there.
  if (!d.admit_clients() && scenario.clock().mode() != config::Clock::WALL) {
    return absl::OkStatus();
  }
  const size_t k = d.start_with_clients() > 0 ? d.start_with_clients() : scenario.num_clients();
  return transport->AwaitClients(k, absl::Now() + absl::Seconds(d.start_timeout_s()));
}

}  // namespace fedsim
