// The identity of this build, as workers report it at registration and the
// server checks it (see GrpcServerOptions::accept_mismatched_workers).
//
// Thread safety: pure.
#ifndef FEDSIM_RPC_BUILD_INFO_H_
#define FEDSIM_RPC_BUILD_INFO_H_

#include <string_view>

namespace fedsim {

// The commit this binary was built from: CMake's FEDSIM_GIT_REV (the short
// hash of HEAD at configure time), or "unknown" outside a git checkout.
std::string_view BuildId();

}  // namespace fedsim

#endif  // FEDSIM_RPC_BUILD_INFO_H_
