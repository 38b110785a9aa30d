// AggregatorClient::FetchModel: a model streamed in chunks (or whole, in the
// one answer of a local link), or written by the server into a slot of the
// worker's download segment (rpc/shm_segment.h).
#include <algorithm>
#include <atomic>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>

#include "absl/strings/str_cat.h"
#include "rpc/aggregator_client.h"
#include "rpc/chunker.h"
#include "rpc/raw_chunk.h"
#include "rpc/wire.h"

namespace fedsim {

absl::StatusOr<std::vector<float>> AggregatorClient::FetchModel(const WorkerSession& worker,
                                                                const ModelRef& model) {
  std::shared_ptr<UpdateSegment> segment;
  {
    absl::MutexLock lock(&segment_mu_);
    segment = LazySegmentLocked(&download_segment_, &download_lazy_slots_, lazy_params_, 1);
  }
  if (segment != nullptr) {
    if (const std::optional<uint32_t> slot = segment->Acquire(); slot.has_value()) {
      absl::StatusOr<std::vector<float>> fetched = FetchOnce(worker, model, segment.get(), *slot);
      // The server answers NotFound before it writes anything (and a model
      // it does not keep is no reason to lose the slot).
      if (fetched.ok() || absl::IsNotFound(fetched.status())) {
        segment->Release(*slot);
        return fetched;
      }
      if (!RetireAfterFailure(fetched.status(), segment, *slot, &download_segment_)) {
        return fetched.status();
      }
    }
  }
  return FetchOnce(worker, model, nullptr, 0);
}

namespace {

// One model's chunks as a fetch receives them, streamed or as the one
// answer of a local link: each must name the model asked for; either one
// chunk says the model is in the fetch's shared-memory slot, or the chunks
// carry it and add up. After the first bad chunk the rest are only counted.
class ModelReceiver {
 public:
  ModelReceiver(const ModelRef& model, UpdateSegment* segment, uint32_t slot)
      : what_(absl::StrCat("FetchModel(", model.ToString(), "): ")),
        model_(model),
        segment_(segment),
        slot_(slot) {}

  // The next chunk: its fields besides data (`decoded`: whether they
  // parsed) and its data's parts.
  void Add(const absl::Status& decoded, const wire::ModelChunk& chunk,
           std::span<const std::string_view> data) {
    for (std::string_view part : data) bytes_ += part.size();
    if (!bad_.ok()) return;  // drain what is already on its way
    absl::StatusOr<ModelRef> named = ModelRefFromWire(chunk.model());
    if (!decoded.ok()) {
      bad_ = absl::DataLossError(absl::StrCat(what_, decoded.message()));
    } else if (!named.ok() || *named != model_) {
      bad_ = absl::DataLossError(absl::StrCat(what_, "a chunk belongs to ",
                                              named.ok() ? named->ToString() : "an unknown model"));
    } else if (chunk.in_shm_slot()) {
      // The one chunk of a model written into our slot.
      if (segment_ == nullptr || assembler_.has_value() || from_slot_.has_value() ||
          chunk.num_params() != segment_->num_params() || !data.empty()) {
        bad_ = absl::DataLossError(absl::StrCat(
            what_, "the server says the model is in a shared-memory slot, which ",
            segment_ == nullptr ? "this fetch did not offer"
                                : absl::StrCat("holds ", segment_->num_params(), " floats, not ",
                                               chunk.num_params(), ", or came with other chunks")));
      } else {
        std::span<const float> values = segment_->Slot(slot_);
        from_slot_.emplace(values.begin(), values.end());
        bytes_ += values.size() * sizeof(float);
      }
    } else if (from_slot_.has_value()) {
      bad_ = absl::DataLossError(absl::StrCat(what_, "a chunk followed the shared-memory one"));
    } else {
      if (!assembler_.has_value()) assembler_.emplace(chunk.num_params());
      absl::Status added = assembler_->AddParts(chunk.offset(), data);
      if (!added.ok()) bad_ = absl::DataLossError(absl::StrCat(what_, added.message()));
    }
  }

  // The first bad chunk's error (OK so far).
  const absl::Status& error() const { return bad_; }
  // After the last chunk: the model, or why there is none (`failed`, the
  // call's own error, when every chunk so far was good). Adds the tensor
  // bytes received to *fetched, and those of a model from the slot to
  // *shared.
  absl::StatusOr<std::vector<float>> Take(const absl::Status& failed,
                                          std::atomic<uint64_t>* fetched,
                                          std::atomic<uint64_t>* shared) {
    *fetched += bytes_;
    if (!bad_.ok()) return bad_;
    if (!failed.ok()) return failed;
    if (from_slot_.has_value()) {
      *shared += from_slot_->size() * sizeof(float);
      return std::move(*from_slot_);
    }
    if (!assembler_.has_value())
      return absl::DataLossError(absl::StrCat(what_, "no chunk arrived"));
    absl::Status done = assembler_->Finish();
    if (!done.ok()) return absl::DataLossError(absl::StrCat(what_, done.message()));
    return std::move(*assembler_).Take();
  }

 private:
  const std::string what_;
  const ModelRef model_;
  UpdateSegment* const segment_;
  const uint32_t slot_;
  std::optional<ChunkAssembler> assembler_;  // sized by the first chunk
  std::optional<std::vector<float>> from_slot_;
  uint64_t bytes_ = 0;
  absl::Status bad_;
};

}  // namespace

absl::StatusOr<std::vector<float>> AggregatorClient::FetchOnce(const WorkerSession& worker,
                                                               const ModelRef& model,
                                                               UpdateSegment* segment,
                                                               uint32_t slot) {
  wire::FetchModelRequest request;
  request.set_worker_id(worker.worker_id);
  request.set_session(worker.session);
  ModelRefToWire(model, request.mutable_model());
  if (segment != nullptr) {
    request.set_shm_segment(segment->name());
    request.set_shm_slot(slot);
  }
  ModelReceiver receiver(model, segment, slot);
  if (link_ != nullptr) {
    // One ModelChunk: the model whole, or the note that it is in our slot.
    wire::ModelChunk chunk;
    if (absl::Status s = LinkCall(LinkMethod::kFetchModel, request, &chunk); !s.ok()) return s;
    const std::string_view data = chunk.data();
    receiver.Add(absl::OkStatus(), chunk,
                 data.empty() ? std::span<const std::string_view>() : std::span(&data, 1));
    return receiver.Take(absl::OkStatus(), &bytes_fetched_, &bytes_fetched_shared_);
  }
  grpc::ClientContext context;
  Prepare(&context, absl::InfiniteDuration());
  std::unique_ptr<grpc::ClientReader<grpc::ByteBuffer>> reader(
      grpc::internal::ClientReaderFactory<grpc::ByteBuffer>::Create(channel_.get(), *fetch_method_,
                                                                    &context, request));
  grpc::ByteBuffer buffer;
  wire::ModelChunk chunk;  // the fields besides data
  DecodedChunk data;
  while (reader->Read(&buffer)) {
    const bool was_bad = !receiver.error().ok();
    const absl::Status decoded = DecodeChunk(buffer, kModelChunkDataField, &chunk, &data);
    receiver.Add(decoded, chunk, data.data);
    if (!was_bad && !receiver.error().ok()) context.TryCancel();
  }
  const grpc::Status status = reader->Finish();
  return receiver.Take(FromGrpcStatus(status), &bytes_fetched_, &bytes_fetched_shared_);
}

}  // namespace fedsim
