// The run data of a worker whose clients bring their own data (fedsim client
// --data=DIR ...): its client folders, checked against the run.
//
// Thread safety: a plain function.
#ifndef FEDSIM_CLIENT_FOLDER_RUN_DATA_H_
#define FEDSIM_CLIENT_FOLDER_RUN_DATA_H_

#include <cstdio>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "proto/fedsim.pb.h"
#include "proto/scenario.pb.h"
#include "runtime/run_setup.h"

namespace fedsim {

// The run's data as the worker's client folders (data_dirs) give it: each
// folder checked against the run's model and against the training count the
// server's client list (`reg`, from `server`) gives its client. Logs a line
// per folder to `log` when it is not null. InternalError when the server
// gave another number of client slots than there are folders;
// FailedPrecondition, naming the folder, when a count differs.
absl::StatusOr<RunData> FolderRunData(const config::Scenario& scenario,
                                      const wire::RegisterResponse& reg,
                                      const std::vector<std::string>& data_dirs,
                                      const std::string& server, FILE* log);

}  // namespace fedsim

#endif  // FEDSIM_CLIENT_FOLDER_RUN_DATA_H_
