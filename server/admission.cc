#include "server/admission.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <optional>
#include <utility>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "rpc/auth.h"
#include "rpc/chunker.h"
#include "rpc/wire.h"

namespace fedsim {

absl::Status CheckWorkerIdentity(const wire::RegisterRequest& request, const RunIdentity& run,
                                 std::string* warning) {
  std::vector<std::string> differences;
  if (request.build_id() != run.build_id) {
    differences.push_back(
        absl::StrCat("build id '", request.build_id(), "' (the server's is '", run.build_id, "')"));
  }
  auto it = request.numeric_fingerprints().find(run.numeric_mode);
  const std::string theirs = it == request.numeric_fingerprints().end() ? "" : it->second;
  if (theirs != run.numeric_fingerprint) {
    differences.push_back(absl::StrCat(run.numeric_mode, " numeric fingerprint '", theirs,
                                       "' (the server's is '", run.numeric_fingerprint, "')"));
  }
  if (differences.empty()) return absl::OkStatus();
  const std::string what =
      absl::StrCat("worker ", request.worker_name(), " has ", absl::StrJoin(differences, " and "),
                   ", so its results would not be bit-identical to the server's");
  if (run.accept_mismatched) {
    *warning = absl::StrCat(what, "; accepted (--accept_worker_mismatch)");
    return absl::OkStatus();
  }
  return absl::FailedPreconditionError(absl::StrCat(
      what,
      ". Rebuild the worker from the same commit and with the same numeric mode as the "
      "server, or start the server with --accept_worker_mismatch to take it anyway"));
}

absl::Status CheckCallToken(const std::multimap<grpc::string_ref, grpc::string_ref>& metadata,
                            const std::string& token) {
  if (token.empty()) return absl::OkStatus();
  auto it = metadata.find(kTokenMetadataKey);
  std::optional<absl::string_view> value;
  if (it != metadata.end()) value = absl::string_view(it->second.data(), it->second.size());
  return CheckBearer(value, token);
}

absl::StatusOr<PushClaim> ReadPushClaim(
    const std::multimap<grpc::string_ref, grpc::string_ref>& metadata) {
  auto get = [&](const char* key) -> std::optional<std::string> {
    auto it = metadata.find(key);
    if (it == metadata.end()) return std::nullopt;
    return std::string(it->second.data(), it->second.size());
  };
  std::optional<std::string> worker = get(kPushWorkerKey), session = get(kPushSessionKey),
                             task = get(kPushTaskKey);
  PushClaim claim;
  if (!worker || !session || !task || !absl::SimpleAtoi(*worker, &claim.worker) ||
      !absl::SimpleAtoi(*task, &claim.task)) {
    return absl::FailedPreconditionError(absl::StrCat(
        "PushUpdate must name its worker, session and task in the metadata (", kPushWorkerKey, ", ",
        kPushSessionKey, ", ", kPushTaskKey, "; protocol ", kProtocolVersion, ")"));
  }
  claim.session = *std::move(session);
  if (std::optional<std::string> want = get(kPushWantKey); want.has_value()) {
    if (!absl::SimpleAtoi(*want, &claim.want_tasks)) claim.want_tasks = 0;
  }
  return claim;
}

UpdateReader::UpdateReader(uint64_t num_params, int max_metrics)
    : num_params_(num_params), max_metrics_(max_metrics) {}

absl::Status UpdateReader::Add(const wire::UpdateChunk& chunk,
                               absl::FunctionRef<absl::Status(DecodedUpdate*)> check_header) {
  const std::string_view data = chunk.data();
  return Add(chunk, std::span<const std::string_view>(&data, 1), check_header);
}

absl::Status UpdateReader::Add(const wire::UpdateChunk& chunk,
                               std::span<const std::string_view> data,
                               absl::FunctionRef<absl::Status(DecodedUpdate*)> check_header) {
  if (!delta_.has_value()) {
    absl::Status status = ReadHeader(chunk, check_header);
    if (!status.ok()) return status;
    shared_ = update_.shm_slot > 0;
    delta_.emplace(shared_ ? 0 : update_.expected_params);
    const TaskResult& r = update_.result;
    if (!shared_) scanner_.emplace(r.client, r.base, r.num_examples, update_.expected_params);
  }
  if (shared_) {
    const bool has_data =
        std::any_of(data.begin(), data.end(), [](std::string_view p) { return !p.empty(); });
    if (has_data && shared_error_.ok()) {
      shared_error_ = absl::InvalidArgumentError(
          absl::StrCat("update for task ", update_.result.id,
                       " names a shared-memory slot and streams data too"));
    }
    return absl::OkStatus();
  }
  // The first error sticks (Finish returns it); the caller keeps draining.
  delta_->AddParts(chunk.offset(), data).IgnoreError();
  // While the chunk is in cache (a no-op after an error: nothing arrives).
  scanner_->Advance(delta_->data(), delta_->received_floats());
  return absl::OkStatus();
}

absl::Status UpdateReader::ReadHeader(
    const wire::UpdateChunk& chunk, absl::FunctionRef<absl::Status(DecodedUpdate*)> check_header) {
  if (!chunk.has_header()) {
    return absl::FailedPreconditionError("PushUpdate: the first chunk must carry the UpdateHeader");
  }
  const wire::UpdateHeader& header = chunk.header();
  update_.worker = header.worker_id();
  update_.session = header.session();
  update_.shm_segment = header.shm_segment();
  update_.shm_slot = header.shm_slot();
  TaskResult& result = update_.result;
  result.id = header.task_id();
  result.client = header.client_id();
  absl::StatusOr<ModelRef> base = ModelRefFromWire(header.base());
  if (!base.ok()) return base.status();
  result.base = *base;
  result.num_examples = header.num_examples();
  update_.expected_params = num_params_;
  absl::Status early = check_header(&update_);
  if (!early.ok()) return early;
  if (update_.shm_slot > 0 && (update_.segment == nullptr || update_.expected_params == 0)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "update for task ", result.id, " names a shared-memory slot but carries no delta"));
  }
  if (header.metrics_size() > max_metrics_) {
    return absl::InvalidArgumentError(absl::StrCat("update for task ", result.id, " has ",
                                                   header.metrics_size(), " metrics, more than ",
                                                   max_metrics_));
  }
  for (const auto& [name, value] : header.metrics()) {
    if (!std::isfinite(value)) {
      return absl::InvalidArgumentError(absl::StrCat("update for task ", result.id, ": metric '",
                                                     name, "' is not finite (", value, ")"));
    }
  }
  result.metrics.insert(header.metrics().begin(), header.metrics().end());
  if (header.num_params() != update_.expected_params) {
    return absl::InvalidArgumentError(
        absl::StrCat("update for task ", result.id, " has the wrong size: expected ",
                     update_.expected_params, " floats, got ", header.num_params()));
  }
  return absl::OkStatus();
}

uint64_t UpdateReader::bytes_received() const {
  return delta_.has_value() ? delta_->bytes_seen() : 0;
}

absl::Status UpdateReader::Finish() {
  if (!delta_.has_value()) {
    return absl::InvalidArgumentError("PushUpdate: empty stream (no header chunk)");
  }
  TaskResult& result = update_.result;
  DeltaScan scan;
  if (shared_) {
    if (!shared_error_.ok()) return shared_error_;
    update_.segment->CopySlot(update_.shm_slot, &result.delta);
    // The finiteness check and the fingerprint in one pass over the floats.
    scan =
        ScanUpdate(result.client, result.base, result.num_examples, result.delta, result.metrics);
  } else {
    absl::Status status = delta_->Finish();
    if (!status.ok()) {
      return absl::Status(status.code(),
                          absl::StrCat("update for task ", result.id, ": ", status.message()));
    }
    result.delta = std::move(*delta_).Take();
    scan = scanner_->Finish(result.delta.data(), result.metrics);
  }
  const size_t bad = scan.first_non_finite;
  if (bad < result.delta.size()) {
    return absl::InvalidArgumentError(absl::StrCat("update for task ", result.id,
                                                   ": non-finite value ", result.delta[bad],
                                                   " at index ", bad));
  }
  update_.fingerprint = scan.fingerprint;
  return absl::OkStatus();
}

}  // namespace fedsim
