// Admission: the checks the server makes before it lets a worker or an
// update in, that need none of the transport's shared state. GrpcTransport
// (server/grpc_transport.cc) calls them from its RPC handlers.
//
// Thread safety: pure functions, and UpdateReader (see there).
#ifndef FEDSIM_SERVER_ADMISSION_H_
#define FEDSIM_SERVER_ADMISSION_H_

#include <cstddef>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <string>

#include "absl/functional/function_ref.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "core/task.h"
#include "grpcpp/support/string_ref.h"
#include "proto/fedsim.pb.h"
#include "rpc/chunker.h"
#include "rpc/shm_segment.h"
#include "rpc/wire.h"

namespace fedsim {

// The run's own identity, which a worker must match.
struct RunIdentity {
  std::string build_id;
  // The run's numeric mode ("native" or "reproducible", the key a worker's
  // fingerprint is looked up under) and the server's fingerprint in it.
  std::string numeric_mode = "native";
  std::string numeric_fingerprint;
  bool accept_mismatched = false;
};

// OK when the worker's build id and numeric fingerprint equal the run's.
// Otherwise FailedPrecondition naming both values of each difference and the
// fix (rebuild the worker from the same commit and numeric mode, or start the
// server with --accept_worker_mismatch) -- unless run.accept_mismatched, when
// it returns OK and sets *warning to the same description.
absl::Status CheckWorkerIdentity(const wire::RegisterRequest& request, const RunIdentity& run,
                                 std::string* warning);

// The run token check of one call: OK when `token` is empty (the server
// needs none) or the call's metadata carries it (rpc/auth.h CheckBearer);
// else Unauthenticated, without either value in the message.
absl::Status CheckCallToken(const std::multimap<grpc::string_ref, grpc::string_ref>& metadata,
                            const std::string& token);

// Who a PushUpdate stream says it is, from its metadata (rpc/auth.h), known
// before a byte of it is read.
struct PushClaim {
  uint64_t worker = 0;
  std::string session;
  uint64_t task = 0;
  uint32_t want_tasks = 0;  // tasks it would take with the answer
};
// FailedPrecondition when a key is missing or not a number (want_tasks is
// optional: absent or not a number = 0).
absl::StatusOr<PushClaim> ReadPushClaim(
    const std::multimap<grpc::string_ref, grpc::string_ref>& metadata);

// An update as read off the wire, with the worker that pushed it.
struct DecodedUpdate {
  uint64_t worker = 0;
  std::string session;
  TaskResult result;
  uint64_t fingerprint = 0;  // UpdateFingerprint of the result
  // The floats the update must carry: the reader's num_params, unless
  // check_header lowers it to 0 (an evaluation task's figures come alone).
  uint64_t expected_params = 0;
  // Shared-memory updates (rpc/shm_segment.h): the header's segment name and
  // slot (0 = the delta is streamed), and the mapped segment, which
  // check_header must attach for such an update.
  std::string shm_segment;
  uint32_t shm_slot = 0;
  std::shared_ptr<const MappedUpdateSegment> segment;
};

// Reads one PushUpdate stream into a DecodedUpdate, a chunk at a time (the
// server's stream reactor hands it each chunk as it arrives). Once the
// header (the first chunk) is decoded, and before the bulk arrives,
// `check_header` may refuse the update early (Add returns its status as is,
// and the caller ends the stream) or correct it (the server puts its own n_i
// in num_examples there). Add also returns, ending the stream:
// FAILED_PRECONDITION when the first chunk has no header; INVALID_ARGUMENT
// for an unknown model kind, more than max_metrics metrics or one that is
// not finite, or a header size other than num_params. Errors in the tensor
// chunks stick and come from Finish, at the end of the stream:
// INVALID_ARGUMENT when chunks are not contiguous whole floats adding up to
// num_params, or a value is not finite (naming the first bad index), or the
// stream was empty. A shared-memory update (header shm_slot > 0) is the
// header chunk alone: its delta is copied from the attached segment at
// Finish, and tensor data in its stream is INVALID_ARGUMENT.
//
// Thread safety: not thread-safe (one stream, one reader).
class UpdateReader {
 public:
  UpdateReader(uint64_t num_params, int max_metrics);

  // Takes the stream's next chunk. OK means: read on.
  absl::Status Add(const wire::UpdateChunk& chunk,
                   absl::FunctionRef<absl::Status(DecodedUpdate*)> check_header);
  // The same for a chunk whose data comes apart from its other fields
  // (chunk.data() is then ignored): pieces in gRPC's slices
  // (rpc/raw_chunk.h), copied once into the delta.
  absl::Status Add(const wire::UpdateChunk& chunk, std::span<const std::string_view> data,
                   absl::FunctionRef<absl::Status(DecodedUpdate*)> check_header);

  // The stream ended: OK when the update is complete and valid (update()).
  // REQUIRES: every Add returned OK; called once.
  absl::Status Finish();

  // The update; complete only after Finish returned OK.
  DecodedUpdate& update() { return update_; }

  // Tensor bytes received so far, accepted or not.
  uint64_t bytes_received() const;

 private:
  absl::Status ReadHeader(const wire::UpdateChunk& chunk,
                          absl::FunctionRef<absl::Status(DecodedUpdate*)> check_header);

  const uint64_t num_params_;
  const int max_metrics_;
  DecodedUpdate update_;
  std::optional<ChunkAssembler> delta_;  // set once the header passed
  // The streamed delta's check and fingerprint, chunk by chunk.
  std::optional<DeltaScanner> scanner_;
  bool shared_ = false;        // the delta is in update_.segment
  absl::Status shared_error_;  // data sent with a shared-memory update
};

}  // namespace fedsim

#endif  // FEDSIM_SERVER_ADMISSION_H_
