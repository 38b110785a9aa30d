#include "util/build_info.h"

// Written at build time by cmake/BuildId.cmake; only this file includes it,
// so a new commit recompiles one file.
#include "fedsim_build_id.h"

namespace fedsim {

std::string_view BuildId() { return FEDSIM_BUILD_ID; }

}  // namespace fedsim
