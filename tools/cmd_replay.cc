// fedsim replay — placeholder until its owner fills it in.
#include <cstdio>

#include "absl/flags/parse.h"
#include "tools/commands.h"

namespace fedsim {

int ReplayMain(int argc, char** argv) {
  absl::ParseCommandLine(argc, argv);
  std::fprintf(stderr, "fedsim replay: not built yet\n");
  return 1;
}

}  // namespace fedsim
