#include "tools/common_flags.h"

#include "absl/flags/flag.h"

ABSL_FLAG(std::vector<std::string>, set, {},
          "Override a scenario field, e.g. --set=algorithm.fedbuff.buffer_size=20 or "
          "--set=local.lr=0.05; repeat the flag or separate several with commas. Message "
          "fields take text format in braces: --set='partition={dirichlet{alpha:0.1}}'.");
