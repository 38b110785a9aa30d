#include "tools/security_flags.h"

#include <cstdlib>

#include "absl/flags/flag.h"
#include "rpc/auth.h"

ABSL_FLAG(std::string, token_file, "",
          "File holding the run token that every call must carry (default: the FEDSIM_TOKEN "
          "environment variable; none when neither is set). Make one with: openssl rand -hex 32");
ABSL_FLAG(std::string, tls_cert, "",
          "This side's TLS certificate (PEM): the server's, or a worker's for mutual TLS.");
ABSL_FLAG(std::string, tls_key, "", "The private key (PEM) of --tls_cert.");
ABSL_FLAG(std::string, tls_ca, "",
          "CA certificate (PEM) the other side's certificate must chain to. Workers and "
          "`fedsim status`: the server's CA (turns TLS on). Server: the workers' CA (turns "
          "mutual TLS on). scripts/make-test-certs makes a test CA.");
ABSL_FLAG(std::string, tls_server_name, "",
          "The name the server's certificate carries, when it is not the host dialled.");
ABSL_FLAG(bool, insecure, false,
          "fedsim server: listen on an address other than loopback without TLS and a run token "
          "(only on a network you trust: anyone who reaches the port can join the run).");

namespace fedsim {

absl::Status ApplyServerSecurityFlags(GrpcServerOptions* options) {
  absl::StatusOr<std::string> token = ReadRunToken(absl::GetFlag(FLAGS_token_file));
  if (!token.ok()) return token.status();
  options->token = *token;
  options->security.cert_file = absl::GetFlag(FLAGS_tls_cert);
  options->security.key_file = absl::GetFlag(FLAGS_tls_key);
  options->security.client_ca_file = absl::GetFlag(FLAGS_tls_ca);
  options->insecure = absl::GetFlag(FLAGS_insecure);
  return absl::OkStatus();
}

absl::StatusOr<ChannelSecurity> ChannelSecurityFromFlags() {
  absl::StatusOr<std::string> token = ReadRunToken(absl::GetFlag(FLAGS_token_file));
  if (!token.ok()) return token.status();
  ChannelSecurity security;
  security.token = *token;
  security.ca_file = absl::GetFlag(FLAGS_tls_ca);
  security.cert_file = absl::GetFlag(FLAGS_tls_cert);
  security.key_file = absl::GetFlag(FLAGS_tls_key);
  security.server_name = absl::GetFlag(FLAGS_tls_server_name);
  return security;
}

absl::Status UseFreshRunToken(GrpcServerOptions* options) {
  absl::StatusOr<std::string> token = RandomHex(32);
  if (!token.ok()) return token.status();
  options->token = *token;
  setenv(kTokenEnvVar, token->c_str(), 1);
  return absl::OkStatus();
}

std::vector<uint64_t> ClientExamples(const PreparedRun& run) {
  std::vector<uint64_t> n;
  n.reserve(run.data->num_clients());
  for (uint32_t rows : run.data->client_rows) n.push_back(rows);
  return n;
}

RunStatusReporter::RunStatusReporter(GrpcTransport* transport, uint64_t max_commits)
    : transport_(transport) {
  progress_.max_commits = max_commits;
  transport_->SetRunProgress(progress_);
}

void RunStatusReporter::OnCommit(VirtualTime t, Version new_version, const CommitResult& result) {
  (void)result;
  progress_.commits = new_version;
  progress_.virtual_time_s = t;
  transport_->SetRunProgress(progress_);
}

void RunStatusReporter::OnEvaluation(const MetricsRow& row) {
  progress_.virtual_time_s = row.virtual_time;
  auto it = row.values.find("test_accuracy");
  if (it != row.values.end()) {
    progress_.has_accuracy = true;
    progress_.last_accuracy = it->second;
  }
  transport_->SetRunProgress(progress_);
}

}  // namespace fedsim
