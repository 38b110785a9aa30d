// Tensor chunks (ModelChunk, UpdateChunk) as raw gRPC byte buffers, so that
// their float bytes are copied once per side instead of three times.
//
// Through generated protobuf code a chunk's bytes were copied into the
// message's `data` string, serialized into gRPC's buffer, and on the far side
// parsed into another string before reaching the model buffer. Here the
// sender writes the chunk's other fields through protobuf and appends the
// data field itself, as a slice that points into the tensor (no copy at all
// when an owner keeps the tensor alive, one copy otherwise); the receiver
// parses the other fields and copies the data field's bytes straight from
// gRPC's slices into the tensor. The bytes on the wire are an ordinary
// serialization of the same message, so either side may still be plain
// protobuf code (tests write chunks by hand through the generated stub).
//
// Thread safety: pure functions.
#ifndef FEDSIM_RPC_RAW_CHUNK_H_
#define FEDSIM_RPC_RAW_CHUNK_H_

#include <cstdint>
#include <memory>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "google/protobuf/message_lite.h"
#include "grpcpp/support/byte_buffer.h"
#include "grpcpp/support/slice.h"

namespace fedsim {

// Field numbers of the `data` field of the chunk messages (proto/fedsim.proto).
inline constexpr uint32_t kModelChunkDataField = 4;
inline constexpr uint32_t kUpdateChunkDataField = 3;

// `header` (a chunk message with its data field empty) serialized, then the
// length-delimited field `data_field` holding `data`. With an `owner`, the
// data slice points into `data` and holds a reference to `owner` until gRPC
// has sent it; without, the bytes are copied once into the buffer.
grpc::ByteBuffer EncodeChunk(const google::protobuf::MessageLite& header, uint32_t data_field,
                             std::string_view data, std::shared_ptr<const void> owner = nullptr);

// A chunk read off the wire: its data field as views into the buffer's
// slices, which `slices` keeps alive.
struct DecodedChunk {
  std::vector<grpc::Slice> slices;
  std::vector<std::string_view> data;  // the data field's bytes, in order
};

// Parses every field of `buffer` but `data_field` into *header (cleared
// first) and points out->data at the data field's bytes. InvalidArgument for
// bytes that are not a valid message of header's type, or a data field that
// is not length-delimited or comes twice.
absl::Status DecodeChunk(const grpc::ByteBuffer& buffer, uint32_t data_field,
                         google::protobuf::MessageLite* header, DecodedChunk* out);

// A whole (small) message from or into a raw buffer. InvalidArgument when
// the bytes do not parse.
absl::Status ParseRawMessage(const grpc::ByteBuffer& buffer, google::protobuf::MessageLite* out);
grpc::ByteBuffer SerializeRawMessage(const google::protobuf::MessageLite& message);

}  // namespace fedsim

#endif  // FEDSIM_RPC_RAW_CHUNK_H_
