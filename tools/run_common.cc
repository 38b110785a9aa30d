#include "tools/run_common.h"

#include <csignal>
#include <cstdio>

#include "runtime/model_setup.h"

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
      static_cast<unsigned long long>(s.updates_dropped), s.final_accuracy, s.final_loss,
      s.wall_s, s.final_model_hash.c_str(), o.run_dir.c_str());
  std::fflush(stdout);
}

void SetNumericIdentity(const config::Scenario& scenario, GrpcServerOptions* options) {
  options->numeric_mode = NumericModeName(scenario.numeric());
  options->numeric_fingerprint = OwnNumericFingerprints()[options->numeric_mode];
}

}  // namespace fedsim
