#include "ml/gpu/host_net.h"

#include "ml/gpu/exec_host.h"
#include "ml/gpu/net_impl.h"

namespace fedsim::gpu {

std::unique_ptr<GpuNet> NewHostNet(const NetSpec& spec, int clients, int max_rows) {
  auto net = std::make_unique<NetImpl<HostExec>>(HostExec(), spec, clients, max_rows);
  if (!net->status().empty()) return nullptr;
  return net;
}

}  // namespace fedsim::gpu
