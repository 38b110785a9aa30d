// The identity of this build, as workers report it at registration and the
// server checks it (see GrpcServerOptions::accept_mismatched_workers).
//
// Thread safety: pure.
#ifndef FEDSIM_UTIL_BUILD_INFO_H_
#define FEDSIM_UTIL_BUILD_INFO_H_

#include <string_view>

namespace fedsim {

// The commit this binary was built from: the short hash of the source
// tree's HEAD when it was built (cmake/BuildId.cmake), or "unknown" outside a
// git checkout.
std::string_view BuildId();

}  // namespace fedsim

#endif  // FEDSIM_UTIL_BUILD_INFO_H_
