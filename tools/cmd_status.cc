// fedsim status HOST:PORT: asks a running server (`fedsim server`) how its run
// is going, with the RunStatus RPC, and prints it.
//
//   fedsim status HOST:PORT [--json] [--token_file=F] [--tls_ca=CA.pem ...]
//
// Exit codes: 0 answered, 1 not reachable or refused (the message says why),
// 2 usage error.
#include <cstdio>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/flags/parse.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/time/time.h"
#include "google/protobuf/util/json_util.h"
#include "rpc/aggregator_client.h"
#include "rpc/credentials.h"
#include "tools/commands.h"
#include "tools/security_flags.h"

ABSL_FLAG(bool, json, false, "Print the status as one JSON object (RunStatusResponse).");

namespace fedsim {
namespace {

// Whole seconds as "1h2m3s" ("0s" under one second).
std::string Seconds(double s) {
  const int64_t whole = s > 0 ? static_cast<int64_t>(s) : 0;
  return whole == 0 ? "0s" : absl::FormatDuration(absl::Seconds(whole));
}

void PrintStatus(const std::string& address, const wire::RunStatusResponse& r) {
  std::printf("fedsim status: server %s: scenario '%s'%s, up %s%s\n", address.c_str(),
              r.scenario_name().c_str(),
              r.run_id().empty() ? "" : absl::StrCat(" (run ", r.run_id(), ")").c_str(),
              Seconds(r.uptime_s()).c_str(), r.finished() ? ", run finished" : "");
  std::string commits = absl::StrCat(r.commits());
  if (r.max_commits() > 0) absl::StrAppend(&commits, " of ", r.max_commits());
  std::printf("  commits %s, virtual time %.1f s, %s\n", commits.c_str(), r.virtual_time_s(),
              r.has_accuracy() ? absl::StrCat("last test accuracy ", r.last_accuracy()).c_str()
                               : "not evaluated yet");
  std::printf(
      "  workers %u; tasks %u in flight, %u waiting; %llu updates accepted, %llu leases "
      "expired\n",
      r.workers_connected(), r.tasks_in_flight(), r.tasks_pending(),
      static_cast<unsigned long long>(r.updates_accepted()),
      static_cast<unsigned long long>(r.leases_expired()));
  if (r.clients_total() > 0) {
    std::printf("  clients with their own data: %u of %u connected%s\n", r.clients_connected(),
                r.clients_total(),
                r.clients_missing().empty()
                    ? ""
                    : absl::StrCat("; missing: ", absl::StrJoin(r.clients_missing(), ", "),
                                   r.clients_total() - r.clients_connected() >
                                           static_cast<uint32_t>(r.clients_missing_size())
                                       ? ", ..."
                                       : "")
                          .c_str());
  }
  if (!r.slowest_client().empty()) {
    std::printf("  slowest now: %s, its task leased %.1f s ago\n", r.slowest_client().c_str(),
                r.slowest_s());
  }
}

}  // namespace

int StatusMain(int argc, char** argv) {
  std::vector<char*> args = absl::ParseCommandLine(argc, argv);
  if (args.size() != 2) {
    std::fprintf(stderr,
                 "usage: fedsim status HOST:PORT [--json] [--token_file=F] "
                 "[--tls_ca=CA.pem]\n(see 'fedsim status --help')\n");
    return 2;
  }
  const std::string address = args[1];
  absl::StatusOr<ChannelSecurity> security = ChannelSecurityFromFlags();
  if (!security.ok()) {
    std::fprintf(stderr, "fedsim status: %s\n", std::string(security.status().message()).c_str());
    return 1;
  }
  absl::StatusOr<std::shared_ptr<grpc::Channel>> channel = NewWireChannel(address, *security);
  if (!channel.ok()) {
    std::fprintf(stderr, "fedsim status: %s\n", std::string(channel.status().message()).c_str());
    return channel.status().code() == absl::StatusCode::kInvalidArgument ? 2 : 1;
  }
  AggregatorClient client(*channel);
  client.set_token(security->token);
  client.set_rpc_timeout(absl::Seconds(5));
  absl::StatusOr<wire::RunStatusResponse> status = client.RunStatus();
  if (!status.ok()) {
    std::fprintf(stderr, "fedsim status: %s: %s%s\n", address.c_str(),
                 absl::StatusCodeToString(status.status().code()).c_str(),
                 absl::StrCat(": ", status.status().message()).c_str());
    return 1;
  }
  if (absl::GetFlag(FLAGS_json)) {
    std::string json;
    google::protobuf::util::JsonPrintOptions options;
    options.always_print_primitive_fields = true;
    options.preserve_proto_field_names = true;
    (void)google::protobuf::util::MessageToJsonString(*status, &json, options);
    std::printf("%s\n", json.c_str());
  } else {
    PrintStatus(address, *status);
  }
  return 0;
}

}  // namespace fedsim
