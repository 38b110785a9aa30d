// Chunking: how a float tensor crosses the wire. Both directions (models
// down in ModelChunks, updates up in UpdateChunks) use these two pieces, so
// the splitting and the checks on reassembly exist once.
//
//   sender:   SplitIntoChunks(values, chunk_bytes, emit) -> emit(offset, bytes)...
//   receiver: ChunkAssembler a(total); a.Add(offset, bytes)...; a.Finish(); a.Take()
//
// A chunk is (offset = index of its first float, bytes = little-endian
// float32 payload of at most kMaxChunkBytes). Chunks travel in order; the
// receiver checks that they are contiguous, whole floats, and add up to the
// announced size exactly.
//
// Thread safety: SplitIntoChunks is pure; a ChunkAssembler is not
// thread-safe (one per stream).
#ifndef FEDSIM_RPC_CHUNKER_H_
#define FEDSIM_RPC_CHUNKER_H_

#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>
#include <vector>

#include "absl/functional/function_ref.h"
#include "absl/status/status.h"

namespace fedsim {

// `requested` bytes per chunk as used: rounded down to whole floats and
// clamped to [4, kMaxChunkBytes] (rpc/wire.h).
size_t ClampChunkBytes(size_t requested);

// Calls emit(offset, bytes) for consecutive chunks of `values` of
// ClampChunkBytes(chunk_bytes) bytes (the last one shorter), in order. An
// empty span gives one empty chunk at offset 0, so a stream always has a
// first message to carry its header. Stops at the first emit that returns
// false (the peer went away). Returns the payload bytes of the chunks emit
// accepted. `bytes` points into `values`: copy it before `values` changes.
uint64_t SplitIntoChunks(std::span<const float> values, size_t chunk_bytes,
                         absl::FunctionRef<bool(uint64_t offset, std::string_view bytes)> emit);

// Reassembles one tensor of a known size from its chunks.
class ChunkAssembler {
 public:
  // Expects exactly `total_floats` floats (reserved up front, not zeroed).
  explicit ChunkAssembler(uint64_t total_floats);

  // Appends one chunk. InvalidArgument, with expected and received values in
  // the message, when `offset` is not the number of floats received so far
  // ("chunk offsets not contiguous: expected offset 100, got 200"), `bytes`
  // is not a whole number of floats, or the total would pass total_floats
  // ("wrong size: expected N floats, got at least M"). The first error
  // sticks: later chunks are ignored and it is returned again, so a caller
  // may keep draining its stream.
  absl::Status Add(uint64_t offset, std::string_view bytes);
  // The same for a chunk whose bytes come in pieces (gRPC slices, which may
  // split a float), copied once into the tensor.
  absl::Status AddParts(uint64_t offset, std::span<const std::string_view> parts);

  // OK when exactly total_floats arrived without error; otherwise the first
  // error, or InvalidArgument "wrong size: expected N floats, got M".
  absl::Status Finish() const;

  uint64_t total_floats() const { return total_; }
  uint64_t received_floats() const { return values_.size(); }
  // Payload bytes passed to Add, accepted or not.
  uint64_t bytes_seen() const { return bytes_seen_; }

  // The floats received so far (received_floats() of them; the storage
  // does not move while chunks arrive).
  const float* data() const { return values_.data(); }

  // The tensor. REQUIRES: Finish().ok().
  std::vector<float> Take() && { return std::move(values_); }

 private:
  uint64_t total_;
  uint64_t bytes_seen_ = 0;
  std::vector<float> values_;
  absl::Status error_;
};

}  // namespace fedsim

#endif  // FEDSIM_RPC_CHUNKER_H_
