// The security and status wiring of `fedsim server`, `fedsim run`,
// `fedsim client` and `fedsim status`, kept out of the commands so each needs
// one call per job:
//
//   --token_file (or $FEDSIM_TOKEN)  the run token; never a flag value, which
//                                    `ps` shows to every user
//   --tls_cert, --tls_key            this side's certificate and key
//   --tls_ca                         the CA of the other side's certificate:
//                                    for workers and `fedsim status` the
//                                    server's (turns TLS on); for the server
//                                    the workers' (turns mutual TLS on)
//   --tls_server_name                the name the server's certificate
//                                    carries, when it is not the host dialled
//   --insecure                       the server may listen on a non-loopback
//                                    address without TLS and a token
//
// plus the server's own n_i (ClientExamples) and the engine's progress for
// RunStatus (RunStatusReporter).
//
// Thread safety: the functions read process-wide flags and the environment;
// call them from the main thread. RunStatusReporter: see below.
#ifndef FEDSIM_TOOLS_SECURITY_FLAGS_H_
#define FEDSIM_TOOLS_SECURITY_FLAGS_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/flags/declare.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "rpc/credentials.h"
#include "server/grpc_transport.h"
#include "sim/run_observer.h"
#include "sim/runner.h"

ABSL_DECLARE_FLAG(std::string, token_file);
ABSL_DECLARE_FLAG(std::string, tls_cert);
ABSL_DECLARE_FLAG(std::string, tls_key);
ABSL_DECLARE_FLAG(std::string, tls_ca);
ABSL_DECLARE_FLAG(std::string, tls_server_name);
ABSL_DECLARE_FLAG(bool, insecure);

namespace fedsim {

// Sets options->security, token and insecure from the flags (the token read
// with ReadRunToken). Errors name the file or variable at fault.
absl::Status ApplyServerSecurityFlags(GrpcServerOptions* options);

// The security a worker or `fedsim status` dials the server with.
absl::StatusOr<ChannelSecurity> ChannelSecurityFromFlags();

// `fedsim run`: a fresh random token for this run's server, also put in
// $FEDSIM_TOKEN so the worker processes it starts (which inherit the
// environment) carry it. Other local users cannot join the run.
absl::Status UseFreshRunToken(GrpcServerOptions* options);

// n_i of every client from the server's own data: the aggregation weights
// (GrpcServerOptions::client_examples).
std::vector<uint64_t> ClientExamples(const PreparedRun& run);

// An observer that hands the engine's progress to the transport for
// RunStatus (`fedsim status`). Called on the engine thread, like every
// observer; the transport is thread-safe.
class RunStatusReporter : public RunObserver {
 public:
  // REQUIRES: transport outlives the run.
  RunStatusReporter(GrpcTransport* transport, uint64_t max_commits);
  void OnCommit(VirtualTime t, Version new_version, const CommitResult& result) override;
  void OnEvaluation(const MetricsRow& row) override;

 private:
  GrpcTransport* transport_;
  RunProgress progress_;
};

}  // namespace fedsim

#endif  // FEDSIM_TOOLS_SECURITY_FLAGS_H_
