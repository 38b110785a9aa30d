// fedsim train — placeholder until its owner fills it in.
#include <cstdio>

#include "absl/flags/parse.h"
#include "tools/commands.h"

namespace fedsim {

int TrainMain(int argc, char** argv) {
  absl::ParseCommandLine(argc, argv);
  std::fprintf(stderr, "fedsim train: not built yet\n");
  return 1;
}

}  // namespace fedsim
