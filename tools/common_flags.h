// Flags shared by several subcommands (Abseil flags are process-global, so a
// flag used by two commands is defined once, here).
#ifndef FEDSIM_TOOLS_COMMON_FLAGS_H_
#define FEDSIM_TOOLS_COMMON_FLAGS_H_

#include <string>
#include <vector>

#include "absl/flags/declare.h"

// --set path.to.field=value, repeatable: overrides a scenario field.
ABSL_DECLARE_FLAG(std::vector<std::string>, set);

#endif  // FEDSIM_TOOLS_COMMON_FLAGS_H_
