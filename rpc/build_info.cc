#include "rpc/build_info.h"

// Defined for this file alone (rpc/CMakeLists.txt), so a new commit
// recompiles one file rather than the whole library.
#ifndef FEDSIM_BUILD_ID
#error "FEDSIM_BUILD_ID must be defined by the build (CMake's FEDSIM_GIT_REV)"
#endif

namespace fedsim {

std::string_view BuildId() { return FEDSIM_BUILD_ID; }

}  // namespace fedsim
