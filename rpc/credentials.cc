#include "rpc/credentials.h"

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "rpc/auth.h"
#include "rpc/wire.h"
#include "util/file.h"

namespace fedsim {

absl::StatusOr<std::string> ReadPemFile(const std::string& path, const std::string& what) {
  absl::StatusOr<std::string> text =
      ReadFileToString(path, {.what = absl::StrCat("the ", what), .max_bytes = uint64_t{1} << 20});
  if (!text.ok()) return text.status();
  if (!absl::StrContains(*text, "-----BEGIN")) {
    return absl::InvalidArgumentError(
        absl::StrCat("the ", what, " ", path, " is not a PEM file (no -----BEGIN line)"));
  }
  return text;
}

absl::StatusOr<std::shared_ptr<grpc::Channel>> NewWireChannel(const std::string& address,
                                                              const ChannelSecurity& security) {
  if (absl::Status checked = CheckAddress(address); !checked.ok()) return checked;
  grpc::ChannelArguments args = WireChannelArguments();
  // A lost server is retried soon (200 ms, growing to 2 s between attempts,
  // so that a worker finds a resumed server before a short run is over),
  // but each attempt may take 10 s: gRPC names that bound the "minimum
  // reconnect backoff", yet it is how long one connect (TCP, TLS, the first
  // SETTINGS frame) may take. At 200 ms a SYN dropped by a server that is
  // just coming up (its retransmission is due after 1 s) failed every attempt
  // until the resumed server had finished the run without this worker.
  args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, 200);
  args.SetInt(GRPC_ARG_MIN_RECONNECT_BACKOFF_MS, 10000);
  args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS, 2000);
  if (!security.tls()) {
    if (!security.cert_file.empty() || !security.key_file.empty()) {
      return absl::InvalidArgumentError(
          "a client certificate was given without a CA file (--tls_ca): TLS needs the CA "
          "that signed the server's certificate");
    }
    return grpc::CreateCustomChannel(address, grpc::InsecureChannelCredentials(), args);
  }
  grpc::SslCredentialsOptions ssl;
  absl::StatusOr<std::string> ca = ReadPemFile(security.ca_file, "CA certificate");
  if (!ca.ok()) return ca.status();
  ssl.pem_root_certs = *ca;
  if (security.cert_file.empty() != security.key_file.empty()) {
    return absl::InvalidArgumentError(
        "mutual TLS needs both a client certificate and its key (--tls_cert and --tls_key)");
  }
  if (!security.cert_file.empty()) {
    absl::StatusOr<std::string> cert = ReadPemFile(security.cert_file, "client certificate");
    if (!cert.ok()) return cert.status();
    absl::StatusOr<std::string> key = ReadPemFile(security.key_file, "client key");
    if (!key.ok()) return key.status();
    ssl.pem_cert_chain = *cert;
    ssl.pem_private_key = *key;
  }
  if (!security.server_name.empty()) {
    args.SetString(GRPC_SSL_TARGET_NAME_OVERRIDE_ARG, security.server_name);
  }
  return grpc::CreateCustomChannel(address, grpc::SslCredentials(ssl), args);
}

absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>> NewServerCredentials(
    const ServerSecurity& security) {
  if (security.cert_file.empty() != security.key_file.empty()) {
    return absl::InvalidArgumentError(
        "TLS needs both the server's certificate and its key (--tls_cert and --tls_key)");
  }
  if (!security.tls()) {
    if (!security.client_ca_file.empty()) {
      return absl::InvalidArgumentError(
          "a CA for workers' certificates (--tls_ca) was given without the server's own "
          "certificate and key (--tls_cert, --tls_key): mutual TLS needs TLS");
    }
    return grpc::InsecureServerCredentials();
  }
  absl::StatusOr<std::string> cert = ReadPemFile(security.cert_file, "server certificate");
  if (!cert.ok()) return cert.status();
  absl::StatusOr<std::string> key = ReadPemFile(security.key_file, "server key");
  if (!key.ok()) return key.status();
  grpc::SslServerCredentialsOptions ssl(GRPC_SSL_DONT_REQUEST_CLIENT_CERTIFICATE);
  ssl.pem_key_cert_pairs.push_back({*key, *cert});
  if (!security.client_ca_file.empty()) {
    absl::StatusOr<std::string> ca = ReadPemFile(security.client_ca_file, "client CA certificate");
    if (!ca.ok()) return ca.status();
    ssl.pem_root_certs = *ca;
    ssl.client_certificate_request = GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY;
  }
  return grpc::SslServerCredentials(ssl);
}

}  // namespace fedsim
