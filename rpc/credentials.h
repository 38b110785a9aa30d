// How a worker (or `fedsim status`) dials the server: a plaintext or a TLS
// channel with the wire channel arguments, and the run token its calls carry;
// and the server's side of TLS (its certificate, and for mutual TLS the CA
// its workers' certificates must chain to).
//
//   ChannelSecurity sec;
//   sec.ca_file = "certs/ca.pem";        // check the server's certificate
//   sec.cert_file = "certs/client.pem";  // mutual TLS (optional)
//   sec.key_file = "certs/client.key";
//   sec.token = *ReadRunToken(flag);     // "" = the server needs none
//   auto channel = NewWireChannel("server.lab:50051", sec);
//
// Thread safety: pure functions (they read the PEM files).
#ifndef FEDSIM_RPC_CREDENTIALS_H_
#define FEDSIM_RPC_CREDENTIALS_H_

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "grpcpp/grpcpp.h"

namespace fedsim {

struct ChannelSecurity {
  // PEM file of the CA the server's certificate must chain to; "" = a
  // plaintext channel (only for loopback or a trusted network). Default: "".
  std::string ca_file;
  // This side's certificate and key (PEM), for a server that requires
  // mutual TLS: both or neither. Default: "" (none).
  std::string cert_file;
  std::string key_file;
  // The name the server's certificate must carry, when it is not the host
  // dialled (e.g. dialling an IP address of a host whose certificate names
  // it). Default: "" = the host of the address.
  std::string server_name;
  // The run token every call carries; "" = none. Default: "".
  std::string token;

  bool tls() const { return !ca_file.empty(); }
};

struct ServerSecurity {
  // PEM files of the server's certificate (chain) and private key: both or
  // neither; neither = plaintext. Default: "" (plaintext).
  std::string cert_file;
  std::string key_file;
  // Mutual TLS: the CA every worker's certificate must chain to; a worker
  // without such a certificate cannot connect. REQUIRES cert_file/key_file.
  // Default: "" (workers need no certificate).
  std::string client_ca_file;

  bool tls() const { return !cert_file.empty(); }
};

// Server credentials as `security` says (plaintext when !tls()). Errors:
// InvalidArgument for half a key pair or a client CA without a server
// certificate; the PEM files' errors (each names its file).
absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>> NewServerCredentials(
    const ServerSecurity& security);

// The whole content of a PEM file. When it cannot be read, the status of
// ReadFileToString (util/file.h) naming `what` and the path ("cannot read the
// <what> <path>: no such file or directory", NotFound; PermissionDenied;
// InvalidArgument for a directory or a file over 1 MiB); InvalidArgument when
// it holds no "-----BEGIN".
absl::StatusOr<std::string> ReadPemFile(const std::string& path, const std::string& what);

// A channel to `address` ("host:port") with the wire channel arguments and
// reconnect backoff kept short (200 ms, at most 5 s, so a restarted server is
// found quickly), plaintext or TLS as `security` says. Does not connect yet.
// Errors: InvalidArgument for a bad address or half a client key pair;
// the PEM files' errors.
absl::StatusOr<std::shared_ptr<grpc::Channel>> NewWireChannel(const std::string& address,
                                                              const ChannelSecurity& security);

}  // namespace fedsim

#endif  // FEDSIM_RPC_CREDENTIALS_H_
