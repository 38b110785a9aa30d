#include "client/folder_run_data.h"

#include <cstdint>
#include <utility>

#include "absl/strings/str_cat.h"
#include "config/model_config.h"
#include "data/client_folder.h"
#include "runtime/client_split.h"
#include "runtime/run_setup.h"

namespace fedsim {

absl::StatusOr<RunData> FolderRunData(const config::Scenario& scenario,
                                      const wire::RegisterResponse& reg,
                                      const std::vector<std::string>& data_dirs,
                                      const std::string& server, FILE* log) {
  absl::StatusOr<ModelConfig> model = ModelConfigForScenario(scenario);
  if (!model.ok()) return model.status();
  if (reg.client_slots_size() != static_cast<int>(data_dirs.size()) ||
      reg.client_train_examples_size() != reg.client_slots_size()) {
    return absl::InternalError(absl::StrCat("the server at ", server, " gave ",
                                            reg.client_slots_size(), " client slots for ",
                                            data_dirs.size(), " client folders"));
  }
  const ClientDataSpec spec{model->example_shape(), model->num_classes};
  std::vector<ClientFolder> folders;
  std::vector<uint32_t> slots;
  for (size_t i = 0; i < data_dirs.size(); ++i) {
    absl::StatusOr<ClientFolder> folder = LoadClientFolder(data_dirs[i], spec);
    if (!folder.ok()) return folder.status();
    if (folder->train.size() != reg.client_train_examples(static_cast<int>(i))) {
      return absl::FailedPreconditionError(
          absl::StrCat("client folder ", data_dirs[i], " holds ", folder->train.size(),
                       " training examples, but the run's client list gives client '", folder->name,
                       "' ", reg.client_train_examples(static_cast<int>(i)),
                       "; is it the folder 'fedsim split' wrote for this scenario?"));
    }
    if (log != nullptr) {
      std::fprintf(log,
                   "fedsim client: serving client '%s' (client %u): %zu training "
                   "examples from %s\n",
                   folder->name.c_str(), reg.client_slots(static_cast<int>(i)),
                   folder->train.size(), data_dirs[i].c_str());
    }
    slots.push_back(reg.client_slots(static_cast<int>(i)));
    folders.push_back(*std::move(folder));
  }
  return RunDataFromClientFolders(*model, scenario.num_clients(), folders, slots);
}

}  // namespace fedsim
