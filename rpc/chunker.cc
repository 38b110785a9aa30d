#include "rpc/chunker.h"

#include <algorithm>
#include <cstring>
#include <utility>

#include "absl/strings/str_cat.h"
#include "rpc/wire.h"

namespace fedsim {

size_t ClampChunkBytes(size_t requested) {
  return std::clamp<size_t>(requested / sizeof(float) * sizeof(float), sizeof(float),
                            kMaxChunkBytes);
}

uint64_t SplitIntoChunks(std::span<const float> values, size_t chunk_bytes,
                         absl::FunctionRef<bool(uint64_t offset, std::string_view bytes)> emit) {
  const size_t per_chunk = ClampChunkBytes(chunk_bytes) / sizeof(float);
  const size_t n = values.size();
  size_t offset = 0;
  uint64_t accepted = 0;
  do {
    const size_t count = std::min(per_chunk, n - offset);
    const std::string_view bytes(reinterpret_cast<const char*>(values.data() + offset),
                                 count * sizeof(float));
    if (!emit(offset, bytes)) break;
    accepted += bytes.size();
    offset += count;
  } while (offset < n);
  return accepted;
}

ChunkAssembler::ChunkAssembler(uint64_t total_floats) : total_(total_floats) {
  // reserve + append: no zero-fill of memory that is overwritten anyway.
  values_.reserve(total_floats);
}

absl::Status ChunkAssembler::Add(uint64_t offset, std::string_view bytes) {
  return AddParts(offset, std::span<const std::string_view>(&bytes, 1));
}

absl::Status ChunkAssembler::AddParts(uint64_t offset, std::span<const std::string_view> parts) {
  size_t size = 0;
  for (std::string_view p : parts) size += p.size();
  bytes_seen_ += size;
  if (!error_.ok()) return error_;
  const uint64_t have = values_.size();
  const uint64_t count = size / sizeof(float);
  if (offset != have) {
    error_ = absl::InvalidArgumentError(
        absl::StrCat("chunk offsets not contiguous: expected offset ", have, ", got ", offset));
  } else if (size % sizeof(float) != 0) {
    error_ = absl::InvalidArgumentError(
        absl::StrCat("chunk of ", size, " bytes is not a whole number of float32 values"));
  } else if (have + count > total_) {
    error_ = absl::InvalidArgumentError(
        absl::StrCat("wrong size: expected ", total_, " floats, got at least ", have + count));
  } else {
    // Parts may split a float between them (gRPC's slices fall anywhere):
    // whole floats go straight in, the bytes of a split one wait in `stash`.
    char stash[sizeof(float)];
    size_t stashed = 0;
    for (std::string_view p : parts) {
      if (stashed > 0) {
        const size_t take = std::min(sizeof(float) - stashed, p.size());
        std::memcpy(stash + stashed, p.data(), take);
        stashed += take;
        p.remove_prefix(take);
        if (stashed < sizeof(float)) continue;
        float f;
        std::memcpy(&f, stash, sizeof(float));
        values_.push_back(f);
        stashed = 0;
      }
      const size_t whole = p.size() / sizeof(float);
      const float* first = reinterpret_cast<const float*>(p.data());
      values_.insert(values_.end(), first, first + whole);
      p.remove_prefix(whole * sizeof(float));
      std::memcpy(stash, p.data(), p.size());
      stashed = p.size();
    }
  }
  return error_;
}

absl::Status ChunkAssembler::Finish() const {
  if (!error_.ok()) return error_;
  if (values_.size() != total_) {
    return absl::InvalidArgumentError(
        absl::StrCat("wrong size: expected ", total_, " floats, got ", values_.size()));
  }
  return absl::OkStatus();
}

}  // namespace fedsim
