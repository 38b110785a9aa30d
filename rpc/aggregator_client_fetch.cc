// AggregatorClient::FetchModel: a model streamed in chunks, or written by the
// server into a slot of the worker's download segment (rpc/shm_segment.h).
#include <algorithm>
#include <optional>
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
  if (link_ != nullptr) return LinkFetchOnce(request, model, segment, slot);
  grpc::ClientContext context;
  Prepare(&context, absl::InfiniteDuration());
  std::unique_ptr<grpc::ClientReader<grpc::ByteBuffer>> reader(
      grpc::internal::ClientReaderFactory<grpc::ByteBuffer>::Create(channel_.get(), *fetch_method_,
                                                                    &context, request));
  const std::string what = absl::StrCat("FetchModel(", model.ToString(), "): ");
  std::optional<ChunkAssembler> assembler;  // sized by the first chunk
  std::optional<std::vector<float>> from_slot;
  uint64_t bytes = 0;
  absl::Status bad;
  grpc::ByteBuffer buffer;
  wire::ModelChunk chunk;  // the fields besides data
  DecodedChunk data;
  while (reader->Read(&buffer)) {
    absl::Status decoded = DecodeChunk(buffer, kModelChunkDataField, &chunk, &data);
    for (std::string_view part : data.data) bytes += part.size();
    if (!bad.ok()) continue;  // drain what is already on its way
    absl::StatusOr<ModelRef> named = ModelRefFromWire(chunk.model());
    if (!decoded.ok()) {
      bad = absl::DataLossError(absl::StrCat(what, decoded.message()));
    } else if (!named.ok() || *named != model) {
      bad = absl::DataLossError(absl::StrCat(what, "a chunk belongs to ",
                                             named.ok() ? named->ToString() : "an unknown model"));
    } else if (chunk.in_shm_slot()) {
      // The one chunk of a model written into our slot.
      if (segment == nullptr || assembler.has_value() || from_slot.has_value() ||
          chunk.num_params() != segment->num_params() || !data.data.empty()) {
        bad = absl::DataLossError(absl::StrCat(
            what, "the server says the model is in a shared-memory slot, which ",
            segment == nullptr ? "this fetch did not offer"
                               : absl::StrCat("holds ", segment->num_params(), " floats, not ",
                                              chunk.num_params(), ", or came with other chunks")));
      } else {
        std::span<const float> values = segment->Slot(slot);
        from_slot.emplace(values.begin(), values.end());
        bytes += values.size() * sizeof(float);
      }
    } else if (from_slot.has_value()) {
      bad = absl::DataLossError(absl::StrCat(what, "a chunk followed the shared-memory one"));
    } else {
      if (!assembler.has_value()) assembler.emplace(chunk.num_params());
      absl::Status added = assembler->AddParts(chunk.offset(), data.data);
      if (!added.ok()) bad = absl::DataLossError(absl::StrCat(what, added.message()));
    }
    if (!bad.ok()) context.TryCancel();
  }
  grpc::Status status = reader->Finish();
  bytes_fetched_ += bytes;
  if (!bad.ok()) return bad;
  if (!status.ok()) return FromGrpcStatus(status);
  if (from_slot.has_value()) {
    bytes_fetched_shared_ += from_slot->size() * sizeof(float);
    return std::move(*from_slot);
  }
  if (!assembler.has_value()) return absl::DataLossError(absl::StrCat(what, "no chunk arrived"));
  absl::Status done = assembler->Finish();
  if (!done.ok()) return absl::DataLossError(absl::StrCat(what, done.message()));
  return std::move(*assembler).Take();
}

absl::StatusOr<std::vector<float>> AggregatorClient::LinkFetchOnce(
    const wire::FetchModelRequest& request, const ModelRef& model, UpdateSegment* segment,
    uint32_t slot) {
  // One ModelChunk: the model whole, or the note that it is in our slot.
  wire::ModelChunk chunk;
  if (absl::Status s = LinkCall(LinkMethod::kFetchModel, request, &chunk); !s.ok()) return s;
  const std::string what = absl::StrCat("FetchModel(", model.ToString(), "): ");
  absl::StatusOr<ModelRef> named = ModelRefFromWire(chunk.model());
  if (!named.ok() || *named != model) {
    return absl::DataLossError(
        absl::StrCat(what, "the answer is ", named.ok() ? named->ToString() : "an unknown model"));
  }
  if (chunk.in_shm_slot()) {
    if (segment == nullptr || chunk.num_params() != segment->num_params() ||
        !chunk.data().empty()) {
      return absl::DataLossError(absl::StrCat(
          what, "the server says the model is in a shared-memory slot, which ",
          segment == nullptr ? "this fetch did not offer"
                             : absl::StrCat("holds ", segment->num_params(), " floats, not ",
                                            chunk.num_params(), ", or came with data")));
    }
    std::span<const float> values = segment->Slot(slot);
    const uint64_t bytes = values.size() * sizeof(float);
    bytes_fetched_ += bytes;
    bytes_fetched_shared_ += bytes;
    return std::vector<float>(values.begin(), values.end());
  }
  bytes_fetched_ += chunk.data().size();
  ChunkAssembler assembler(chunk.num_params());
  const std::string_view data = chunk.data();
  if (absl::Status added = assembler.AddParts(chunk.offset(), std::span(&data, 1)); !added.ok()) {
    return absl::DataLossError(absl::StrCat(what, added.message()));
  }
  if (absl::Status done = assembler.Finish(); !done.ok()) {
    return absl::DataLossError(absl::StrCat(what, done.message()));
  }
  return std::move(assembler).Take();
}

}  // namespace fedsim
