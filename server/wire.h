// Helpers shared by both ends of the wire protocol (proto/fedsim.proto): the
// domain <-> proto conversions of tasks, the absl <-> gRPC status conversion
// done once at the gRPC edge, the channel arguments both ends use, and the
// fingerprint the server uses to recognize an identical resent update.
//
// Tensors travel as raw little-endian float32 bytes; the host must be
// little-endian (checked at compile time in wire.cc).
//
// Thread safety: every function here is pure and may be called from any thread.
#ifndef FEDSIM_SERVER_WIRE_H_
#define FEDSIM_SERVER_WIRE_H_

#include <cstddef>
#include <cstdint>
#include <map>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "grpcpp/grpcpp.h"
#include "proto/fedsim.pb.h"
#include "sim/transport.h"

namespace fedsim {

// The protocol version this build speaks (proto enum PROTOCOL_VERSION_CURRENT).
inline constexpr uint32_t kProtocolVersion = 1;

// Largest tensor payload of one ModelChunk / UpdateChunk, in bytes.
inline constexpr size_t kMaxChunkBytes = size_t{1} << 20;

// TaskSpec <-> wire::Task. Every LocalTraining field is written explicitly so
// the worker trains with exactly the engine's values.
void TaskToWire(const TaskSpec& spec, wire::Task* task);
TaskSpec TaskFromWire(const wire::Task& task);

// Status conversions at the gRPC edge (the code numbers coincide).
grpc::Status ToGrpcStatus(const absl::Status& status);
absl::Status FromGrpcStatus(const grpc::Status& status);

// Channel arguments shared by the server and its workers: no message size
// limits (we never rely on that: tensors travel in chunks) and large HTTP/2
// flow-control windows, which decide loopback throughput for big models.
grpc::ChannelArguments WireChannelArguments();
// The same settings as (name, value) pairs, for grpc::ServerBuilder.
std::vector<std::pair<std::string, int>> WireIntArguments();

// A 64-bit fingerprint of an update's content (client, base version, number
// of examples, every delta bit, metrics). Not cryptographic: it only tells an
// identical resend from a different result for the same task. Fast (several
// GB/s) so that it costs little next to the transfer itself.
uint64_t UpdateFingerprint(ClientId client, Version base_version, uint64_t num_examples,
                           std::span<const float> delta,
                           const std::map<std::string, double>& metrics);

}  // namespace fedsim

#endif  // FEDSIM_SERVER_WIRE_H_
