// Fuzz target: the server's decoding and validation of a pushed update
// (server/admission.h UpdateReader, fed one chunk at a time as the
// PushUpdate reactor does), on arbitrary bytes, without a server.
// Input: two bytes of num_params (little-endian, mod 4097), one byte of
// max_metrics (mod 16), then the stream: each message a two-byte
// little-endian length and that many bytes of a serialized wire::UpdateChunk,
// decoded as the reactor decodes a raw message (rpc/raw_chunk.h DecodeChunk),
// with its bytes cut into two slices at a point the input picks. A message
// that does not decode ends the stream with an error, as the reactor does.
// The same bytes also go through
// TaskFromWire as a wire::Task (what a worker decodes).
// Corpus: tests/fuzz/update/.
#include <algorithm>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "google/protobuf/stubs/logging.h"
#include "proto/fedsim.pb.h"
#include "rpc/raw_chunk.h"
#include "rpc/wire.h"
#include "server/admission.h"
#include "tests/fuzz/fuzz_util.h"

namespace {

// Cuts the next message from the input (a two-byte little-endian length and
// that many bytes, fewer at the end of the input) into a two-slice buffer,
// split where the length's low bits say. False when none is left.
bool NextChunk(const uint8_t* data, size_t size, size_t* pos, grpc::ByteBuffer* buffer) {
  if (size - *pos < 2) return false;
  size_t len = data[*pos] | (size_t{data[*pos + 1]} << 8);
  const size_t cut_at = data[*pos] % 7;
  *pos += 2;
  if (len > size - *pos) len = size - *pos;
  const size_t cut = std::min(cut_at, len);
  grpc::Slice slices[2] = {grpc::Slice(data + *pos, cut),
                           grpc::Slice(data + *pos + cut, len - cut)};
  *buffer = grpc::ByteBuffer(slices, 2);
  *pos += len;
  return true;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  // Protobuf logs every string field that is not UTF-8: noise here, and slow.
  static const bool quiet = (google::protobuf::SetLogHandler(nullptr), true);
  (void)quiet;
  if (size < 3) return 0;
  const uint64_t num_params = (data[0] | (uint64_t{data[1]} << 8)) % 4097;
  const int max_metrics = data[2] % 16;
  fedsim::UpdateReader reader(num_params, max_metrics);
  const auto check_header = [](fedsim::DecodedUpdate* u) {
    // The server's own example count replaces the worker's claim.
    u->result.num_examples = 7;
    return absl::OkStatus();
  };
  absl::Status s;
  size_t pos = 3;
  grpc::ByteBuffer buffer;
  fedsim::wire::UpdateChunk chunk;
  fedsim::DecodedChunk decoded;
  while (s.ok() && NextChunk(data, size, &pos, &buffer)) {
    s = fedsim::DecodeChunk(buffer, fedsim::kUpdateChunkDataField, &chunk, &decoded);
    if (s.ok()) s = reader.Add(chunk, decoded.data, check_header);
  }
  if (s.ok()) s = reader.Finish();
  const fedsim::DecodedUpdate& update = reader.update();
  const uint64_t bytes = reader.bytes_received();
  if (s.ok()) {
    FUZZ_CHECK(update.result.delta.size() == num_params);
    FUZZ_CHECK(bytes == num_params * 4);
    for (float v : update.result.delta) FUZZ_CHECK(std::isfinite(v));
    FUZZ_CHECK(update.result.metrics.size() <= static_cast<size_t>(max_metrics));
    for (const auto& [name, v] : update.result.metrics) FUZZ_CHECK(std::isfinite(v));
    FUZZ_CHECK(update.result.num_examples == 7);
  } else {
    FUZZ_CHECK(!s.message().empty());
  }

  fedsim::wire::Task task;
  if (task.ParseFromArray(data, static_cast<int>(size))) {
    fedsim::TaskFromWire(task).status().IgnoreError();
  }
  return 0;
}
