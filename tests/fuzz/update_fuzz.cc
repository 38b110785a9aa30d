// Fuzz target: the server's decoding and validation of a pushed update
// (server/admission.h ReadUpdate), on arbitrary bytes, without a server.
// Input: two bytes of num_params (little-endian, mod 4097), one byte of
// max_metrics (mod 16), then the stream: each message a two-byte
// little-endian length and that many bytes of a serialized wire::UpdateChunk.
// A message that does not parse ends the stream, as gRPC ends a read whose
// message it cannot deserialize. The same bytes also go through
// TaskFromWire as a wire::Task (what a worker decodes).
// Corpus: tests/fuzz/update/.
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "google/protobuf/stubs/logging.h"
#include "grpcpp/support/sync_stream.h"
#include "proto/fedsim.pb.h"
#include "rpc/wire.h"
#include "server/admission.h"
#include "tests/fuzz/fuzz_util.h"

namespace {

// A PushUpdate stream that yields the messages cut from the input.
class BytesReader : public grpc::ServerReaderInterface<fedsim::wire::UpdateChunk> {
 public:
  BytesReader(const uint8_t* data, size_t size) : data_(data), size_(size) {}

  void SendInitialMetadata() override {}
  bool NextMessageSize(uint32_t* sz) override {
    if (size_ - pos_ < 2) return false;
    *sz = data_[pos_] | (uint32_t{data_[pos_ + 1]} << 8);
    return true;
  }
  bool Read(fedsim::wire::UpdateChunk* msg) override {
    uint32_t len = 0;
    if (!NextMessageSize(&len)) return false;
    pos_ += 2;
    if (len > size_ - pos_) len = static_cast<uint32_t>(size_ - pos_);
    const bool ok = msg->ParseFromArray(data_ + pos_, static_cast<int>(len));
    pos_ += len;
    return ok;
  }

 private:
  const uint8_t* data_;
  size_t size_;
  size_t pos_ = 0;
};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  // Protobuf logs every string field that is not UTF-8: noise here, and slow.
  static const bool quiet = (google::protobuf::SetLogHandler(nullptr), true);
  (void)quiet;
  if (size < 3) return 0;
  const uint64_t num_params = (data[0] | (uint64_t{data[1]} << 8)) % 4097;
  const int max_metrics = data[2] % 16;
  BytesReader reader(data + 3, size - 3);
  fedsim::DecodedUpdate update;
  uint64_t bytes = 0;
  const absl::Status s = fedsim::ReadUpdate(
      &reader, num_params, max_metrics,
      [](fedsim::DecodedUpdate* u) {
        // The server's own example count replaces the worker's claim.
        u->result.num_examples = 7;
        return absl::OkStatus();
      },
      &update, &bytes);
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
