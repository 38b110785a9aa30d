// Helpers shared by both ends of the wire protocol (proto/fedsim.proto): the
// domain <-> proto conversions of tasks and model references, the absl <->
// gRPC status conversion done once at the gRPC edge, the channel arguments
// both ends use, gRPC deadlines, and the fingerprint the server uses to
// recognize an identical resent update.
//
// Tensors travel as raw little-endian float32 bytes; the host must be
// little-endian (checked at compile time in wire.cc). Chunking lives in
// rpc/chunker.h.
//
// Thread safety: every function here is pure and may be called from any thread.
#ifndef FEDSIM_RPC_WIRE_H_
#define FEDSIM_RPC_WIRE_H_

#include <cstddef>
#include <cstdint>
#include <map>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "core/model_ref.h"
#include "core/task.h"
#include "grpc/support/time.h"
#include "grpcpp/grpcpp.h"
#include "proto/fedsim.pb.h"

namespace fedsim {

// The protocol version this build speaks (proto enum PROTOCOL_VERSION_CURRENT).
inline constexpr uint32_t kProtocolVersion = 3;

// Largest tensor payload of one ModelChunk / UpdateChunk, in bytes.
inline constexpr size_t kMaxChunkBytes = size_t{1} << 20;

// ModelRef <-> wire::ModelRef. InvalidArgument for a kind this build does not know.
void ModelRefToWire(const ModelRef& ref, wire::ModelRef* out);
absl::StatusOr<ModelRef> ModelRefFromWire(const wire::ModelRef& ref);

// TaskSpec <-> wire::Task. The LocalTraining message is copied whole, so the
// worker trains with exactly the engine's settings, whatever fields they
// grow. `due` stays on the server (workers run tasks in lease order).
// TaskFromWire fails (InvalidArgument) only for a bad ModelRef.
void TaskToWire(const TaskSpec& spec, wire::Task* task);
absl::StatusOr<TaskSpec> TaskFromWire(const wire::Task& task);

// Status conversions at the gRPC edge (the code numbers coincide).
grpc::Status ToGrpcStatus(const absl::Status& status);
absl::Status FromGrpcStatus(const grpc::Status& status);

// Channel arguments shared by the server and its workers: no message size
// limits (we never rely on that: tensors travel in chunks) and large HTTP/2
// flow-control windows, which decide loopback throughput for big models.
grpc::ChannelArguments WireChannelArguments();
// The same settings as (name, value) pairs, for grpc::ServerBuilder.
std::vector<std::pair<std::string, int>> WireIntArguments();

// A gRPC deadline `timeout` after the moment gRPC receives it, for
// ClientContext::set_deadline and Server::Shutdown. gRPC enforces deadlines
// on its own real clock: they bound network calls, they are not part of the
// logic an injected Clock (core/clock.h) drives, so no clock is read here.
gpr_timespec GrpcTimeout(absl::Duration timeout);

// A 64-bit fingerprint of an update's content (client, base model, number
// of examples, every delta bit, metrics). Not cryptographic: it only tells an
// identical resend from a different result for the same task. It runs at
// memory speed, so that it costs little next to the transfer itself.
uint64_t UpdateFingerprint(ClientId client, const ModelRef& base, uint64_t num_examples,
                           std::span<const float> delta,
                           const std::map<std::string, double>& metrics);

// UpdateFingerprint's pass over the delta fused with the server's check of
// every update, so that it reads each float once: the fingerprint and the
// index of the first NaN or infinity (delta.size() when there is none).
struct DeltaScan {
  uint64_t fingerprint = 0;  // UpdateFingerprint of the same arguments
  size_t first_non_finite = 0;
};
DeltaScan ScanUpdate(ClientId client, const ModelRef& base, uint64_t num_examples,
                     std::span<const float> delta, const std::map<std::string, double>& metrics);

// ScanUpdate over a delta that arrives in order, piece by piece (a streamed
// push): each piece is scanned while it is still in cache. Gives exactly
// ScanUpdate's figures for the whole delta.
class DeltaScanner {
 public:
  // `size`: the floats the delta will hold.
  DeltaScanner(ClientId client, const ModelRef& base, uint64_t num_examples, size_t size);

  // Scans delta[position(), upto) in whole blocks; a partial block waits for
  // a later call. `delta` is the same growing tensor at each call (its first
  // `upto` floats present).
  void Advance(const float* delta, size_t upto);
  // Scans the rest of the delta (`size` floats present), then the metrics.
  DeltaScan Finish(const float* delta, const std::map<std::string, double>& metrics);

  size_t position() const { return pos_; }

 private:
  static constexpr size_t kLanes = 64;
  static constexpr size_t kBlock = 2 * kLanes;  // floats per block: 512 bytes

  size_t size_;
  size_t pos_ = 0;
  size_t first_non_finite_;
  uint64_t lane_[kLanes];
};

}  // namespace fedsim

#endif  // FEDSIM_RPC_WIRE_H_
