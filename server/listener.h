// Listener: the gRPC server socket of `fedsim server` and `fedsim run`, with
// the protections every deployment gets whatever service it carries:
//
//   - the listen policy: an address other than loopback needs TLS and a run
//     token, unless the operator says --insecure (CheckListenPolicy);
//   - plaintext, TLS or mutual TLS (rpc/credentials.h);
//   - SO_REUSEPORT off, so a second server on the same port fails to start
//     instead of silently taking half the workers;
//   - a cap on every received message (one chunk plus its header), so a peer
//     cannot make the server buffer a huge message before it is refused;
//   - the standard grpc.health.v1 service and server reflection (grpcurl,
//     Kubernetes probes), which need no token.
//
// Thread safety: StartListener may be called from any thread.
#ifndef FEDSIM_SERVER_LISTENER_H_
#define FEDSIM_SERVER_LISTENER_H_

#include <cstddef>
#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "grpcpp/grpcpp.h"
#include "rpc/auth.h"
#include "rpc/credentials.h"

namespace fedsim {

// The largest message the server accepts: one tensor chunk (kMaxChunkBytes)
// plus room for an UpdateHeader with its metrics. Bigger ones are refused
// with RESOURCE_EXHAUSTED.
size_t MaxReceiveMessageBytes();

struct ListenOptions {
  // "HOST:PORT" (port 0 picks a free port) or "unix:PATH", a Unix-domain
  // socket that only this machine's processes of the same user can reach
  // (its file is made 0600). Default: "127.0.0.1:0".
  std::string address = "127.0.0.1:0";
  // TLS (server certificate, optional client CA). Default: plaintext.
  ServerSecurity security;
  // Whether every call must carry a run token (checked by the service).
  // Default: false.
  bool has_token = false;
  // Listen on a non-loopback address without TLS or token. Default: false.
  bool insecure = false;
};

// OK when `host` is loopback, or TLS and a token are both on, or `insecure`.
// Otherwise FailedPrecondition saying what is missing, why it matters and
// the three ways out.
absl::Status CheckListenPolicy(const std::string& address, const HostPort& host_port, bool tls,
                               bool has_token, bool insecure);

struct Listener {
  std::unique_ptr<grpc::Server> server;
  int port = 0;
  std::string address;  // "host:port" with the bound port, or "unix:PATH", as workers dial it
};

// Builds and starts a server with `service` (which must outlive it) on
// options.address. Errors: InvalidArgument for a bad address or TLS files
// (rpc/credentials.h), FailedPrecondition from the listen policy,
// Unavailable when the address cannot be bound (in use, not local).
absl::StatusOr<Listener> StartListener(const ListenOptions& options, grpc::Service* service);

}  // namespace fedsim

#endif  // FEDSIM_SERVER_LISTENER_H_
