// Subcommands of the `fedsim` CLI. Each lives in tools/cmd_<name>.cc, defines
// its own Abseil flags there, and is listed once in main.cc's kCommands table.
// A command's Main receives argv with argv[0] = "fedsim <name>", parses its
// flags with absl::ParseCommandLine and returns the process exit code.
#ifndef FEDSIM_TOOLS_COMMANDS_H_
#define FEDSIM_TOOLS_COMMANDS_H_

namespace fedsim {

struct WorkerOptions;

int TrainMain(int argc, char** argv);
int ValidateMain(int argc, char** argv);
int RunMain(int argc, char** argv);
int ServerMain(int argc, char** argv);
int ClientMain(int argc, char** argv);
int ReplayMain(int argc, char** argv);
int StatusMain(int argc, char** argv);
int CompareMain(int argc, char** argv);
int ReportMain(int argc, char** argv);
int SplitMain(int argc, char** argv);

// The body of `fedsim client` once its flags are read (tools/cmd_client.cc):
// runs the worker, prints its summary line to stdout and any error to
// stderr, and returns the exit code (0, or 1 on an error). `fedsim run`
// calls it in the worker processes it forks.
int RunWorkerAndReport(const WorkerOptions& options);

}  // namespace fedsim

#endif  // FEDSIM_TOOLS_COMMANDS_H_
