#include "server/listener.h"

#include <sys/stat.h>

#include <cerrno>
#include <cstring>
#include <mutex>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "grpcpp/ext/proto_server_reflection_plugin.h"
#include "grpcpp/health_check_service_interface.h"
#include "grpcpp/resource_quota.h"
#include "rpc/wire.h"

namespace fedsim {

namespace {

// Threads of the synchronous server pool, at most.
constexpr int kMaxSyncServerThreads = 16;

}  // namespace

size_t MaxReceiveMessageBytes() { return kMaxChunkBytes + (size_t{64} << 10); }

absl::Status CheckListenPolicy(const std::string& address, const HostPort& host_port, bool tls,
                               bool has_token, bool insecure) {
  if (IsLoopbackHost(host_port.host) || (tls && has_token) || insecure) return absl::OkStatus();
  std::vector<std::string> missing;
  if (!tls) missing.push_back("TLS (--tls_cert, --tls_key)");
  if (!has_token) missing.push_back("a run token (--token_file or $FEDSIM_TOKEN)");
  return absl::FailedPreconditionError(absl::StrCat(
      "refusing to listen on ", address, " without ", absl::StrJoin(missing, " and "),
      ": it is reachable from other machines, and any process that reaches it could "
      "register as a worker and push model updates (poison the model) or read the run. "
      "Give TLS and a token, listen on loopback only (e.g. --listen=127.0.0.1:",
      host_port.port, "), or pass --insecure on a network you trust"));
}

absl::StatusOr<Listener> StartListener(const ListenOptions& options, grpc::Service* service) {
  // A Unix-domain socket is reachable from this machine only: the listen
  // policy's loopback case.
  const std::optional<absl::string_view> socket_path = UnixSocketPath(options.address);
  if (absl::Status checked = CheckAddress(options.address); !checked.ok()) return checked;
  absl::StatusOr<HostPort> host_port =
      socket_path.has_value() ? HostPort{.host = "localhost"} : ParseHostPort(options.address);
  if (!host_port.ok()) return host_port.status();
  absl::Status policy = CheckListenPolicy(options.address, *host_port, options.security.tls(),
                                          options.has_token, options.insecure);
  if (!policy.ok()) return policy;
  absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>> credentials =
      NewServerCredentials(options.security);
  if (!credentials.ok()) return credentials.status();

  // Both are process-wide switches of grpc++ that every later server gets.
  static std::once_flag once;
  std::call_once(once, [] {
    grpc::EnableDefaultHealthCheckService(true);
    grpc::reflection::InitProtoReflectionServerBuilderPlugin();
  });

  grpc::ServerBuilder builder;
  for (const auto& [name, value] : WireIntArguments()) {
    // The message caps are set below; a channel argument would override them.
    if (name == GRPC_ARG_MAX_RECEIVE_MESSAGE_LENGTH || name == GRPC_ARG_MAX_SEND_MESSAGE_LENGTH) {
      continue;
    }
    builder.AddChannelArgument(name, value);
  }
  builder.SetMaxReceiveMessageSize(static_cast<int>(MaxReceiveMessageBytes()));
  builder.SetMaxSendMessageSize(-1);
  // gRPC sets SO_REUSEPORT by default: two servers could then share a port
  // and split the workers between them, both saying "listening".
  builder.AddChannelArgument(GRPC_ARG_ALLOW_REUSEPORT, 0);
  // The Aggregator service runs on the callback API and needs no thread per
  // call; the quota bounds the synchronous pool that the other services
  // (reflection) still use, whatever the number of connections.
  grpc::ResourceQuota quota("fedsim-server");
  quota.SetMaxThreads(kMaxSyncServerThreads);
  builder.SetResourceQuota(quota);
  Listener listener;
  builder.AddListeningPort(options.address, *credentials, &listener.port);
  builder.RegisterService(service);
  listener.server = builder.BuildAndStart();
  if (listener.server == nullptr || listener.port == 0) {
    return absl::UnavailableError(
        absl::StrCat("cannot listen on ", options.address, " (address in use or not local?)"));
  }
  if (socket_path.has_value()) {
    // Only this user may connect (the run token still guards every call).
    const std::string path(*socket_path);
    if (chmod(path.c_str(), S_IRUSR | S_IWUSR) != 0) {
      return absl::UnavailableError(
          absl::StrCat("cannot restrict ", path, " to its owner: ", std::strerror(errno)));
    }
    listener.address = options.address;
    return listener;
  }
  const std::string& host = host_port->host;
  listener.address = host.find(':') != std::string::npos
                         ? absl::StrCat("[", host, "]:", listener.port)
                         : absl::StrCat(host, ":", listener.port);
  return listener;
}

}  // namespace fedsim
