// fedsim: the one command-line entry point, with subcommands.
#include <cstdio>
#include <cstring>
#include <string>
#include <string_view>
#include <vector>

#include "absl/flags/usage.h"
#include "absl/flags/usage_config.h"
#include "absl/strings/match.h"
#include "absl/synchronization/mutex.h"
#include "tools/commands.h"
#include "tools/flag_checks.h"
#include "util/allocator.h"
#include "util/spell.h"

namespace fedsim {
namespace {

struct Command {
  std::string_view name;
  std::string_view summary;
  std::string_view usage;  // after "fedsim <name> "
  int (*main)(int, char**);
};

// The explicit table of subcommands.
constexpr Command kCommands[] = {
    {"run", "start a server and worker processes on loopback and run a scenario",
     "SCENARIO.textproto [--workers=W] [--inprocess] [--set=field=value ...]", RunMain},
    {"validate", "check a scenario file and print it with every default filled in",
     "SCENARIO.textproto [--set=field=value ...]", ValidateMain},
    {"split", "write each client's data as its own folder, for deployed clients",
     "SCENARIO.textproto --out=DIR [--set=field=value ...] [--force]\n\n"
     "  --out=DIR  the folder for client-0000, client-0001, ... and index.csv (created when\n"
     "             missing); each client folder holds its training split and its share of\n"
     "             the test set (IDX files for images, train.csv/test.csv for features)\n"
     "  --force    write into a folder that already holds files (client folders of the\n"
     "             same names are replaced)",
     SplitMain},
    {"train", "centralized training of one model on one dataset (the reference)",
     "[--model=mlp|cnn|softmax] [--epochs=N] ...", TrainMain},
    {"server", "run the aggregation server alone (clients connect to it)",
     "--scenario=FILE --listen=HOST:PORT [--set=field=value ...]\n"
     "       fedsim server --resume=RUN_DIR --listen=HOST:PORT\n\n"
     "A deployment whose clients bring their own data (README 'Deploying across machines'):\n"
     "  --set=deployment.clients_file=split/index.csv  the client list (fedsim split writes it),\n"
     "  or --set=deployment.admit_clients=true          clients admitted by name as they come;\n"
     "  --set='clock={mode:WALL}'                        real time: the run starts once the\n"
     "      clients are connected (deployment.start_with_clients, start_timeout_s), a client\n"
     "      is available while connected, evaluation waits deployment.eval_timeout_s.\n"
     "Progress lines end with connected clients, tasks in flight and the slowest client.",
     ServerMain},
    {"client", "run a worker process that trains tasks for a server",
     "--server=HOST:PORT [--slots=S]", ClientMain},
    {"replay", "re-run a recorded run from its event log and check its final model",
     "runs/NAME [--set=field=value ...]", ReplayMain},
    {"status", "ask a running server how its run is going",
     "HOST:PORT [--json] [--token_file=F] [--tls_ca=CA.pem]", StatusMain},
    {"compare", "run a comparison file's arms x seeds in parallel and summarize them",
     "COMPARISON.textproto [--parallel=N] [--force] [--seeds=1,2] [--set=...]", CompareMain},
    {"report", "write report.html (plots, offline) for a run or a comparison folder",
     "RUN_OR_COMPARISON_DIR [--html=FILE] [--run=ARM/seed-S]", ReportMain},
};

void PrintOverview(FILE* out) {
  std::fprintf(out,
               "fedsim: a federated-learning simulator and runtime.\n\n"
               "usage: fedsim COMMAND [ARGS...]\n\ncommands:\n");
  for (const Command& c : kCommands) {
    std::fprintf(out, "  %-9s %s\n", std::string(c.name).c_str(), std::string(c.summary).c_str());
  }
  std::fprintf(out, "\n'fedsim COMMAND --help' explains a command and its flags.\n");
}

}  // namespace
}  // namespace fedsim

int main(int argc, char** argv) {
  using fedsim::kCommands;
  // Before any thread starts: tasks reuse freed buffers instead of faulting
  // them in again (util/allocator.h).
  fedsim::KeepFreedMemoryForReuse();
#ifdef NDEBUG
  // Debian builds Abseil with its debug checks, so every absl::Mutex (gRPC
  // makes and drops several per call) is entered into a lock-order graph.
  // The tests keep that check; a release binary skips its cost (0.6% of a
  // two-worker pfl run's CPU, in gRPC's calls).
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
#endif
  if (argc < 2 || std::strcmp(argv[1], "--help") == 0 || std::strcmp(argv[1], "-h") == 0 ||
      std::strcmp(argv[1], "help") == 0) {
    fedsim::PrintOverview(argc < 2 ? stderr : stdout);
    return argc < 2 ? 2 : 0;
  }
  std::string_view name = argv[1];
  for (const fedsim::Command& c : kCommands) {
    if (c.name != name) continue;
    static std::string file_key;
    file_key = "cmd_" + std::string(name) + ".cc";
    static std::string usage;
    usage = std::string(c.summary) + "\n\nusage: fedsim " + std::string(name) + " " +
            std::string(c.usage);
    absl::FlagsUsageConfig config;
    // --help lists the flags of this command (and the shared ones), not of all.
    // The commands that talk to a server also list the security flags.
    static bool networked;
    networked = name == "run" || name == "server" || name == "client" || name == "status";
    config.contains_help_flags = [](absl::string_view file) {
      return absl::StrContains(file, file_key) || absl::StrContains(file, "common_flags.cc") ||
             (networked && absl::StrContains(file, "security_flags.cc"));
    };
    config.contains_helpshort_flags = config.contains_help_flags;
    config.normalize_filename = [](absl::string_view f) { return std::string(f); };
    absl::SetFlagsUsageConfig(config);
    absl::SetProgramUsageMessage(usage);
    static std::string argv0;
    argv0 = "fedsim " + std::string(name);
    argv[1] = argv0.data();
    // A value a flag's parser refuses ("--workers=abc") is a usage error
    // naming the flag, as for any other bad value, rather than Abseil's own
    // "Illegal value" and exit 1. Every command's flags are registered in
    // this one binary, so one check serves them all.
    fedsim::ProblemList syntax;
    fedsim::CheckFlagSyntax(argc - 1, argv + 1, &syntax);
    if (!syntax.empty()) return fedsim::ReportFlagProblems(std::string(name), syntax);
    return c.main(argc - 1, argv + 1);
  }
  std::vector<std::string_view> names;
  for (const fedsim::Command& c : kCommands) names.push_back(c.name);
  std::fprintf(stderr, "fedsim: unknown command '%s'%s\n\n", argv[1],
               fedsim::DidYouMean(name, names).c_str());
  fedsim::PrintOverview(stderr);
  return 2;
}
