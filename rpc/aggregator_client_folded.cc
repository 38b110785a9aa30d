// AggregatorClient::PushFolded: a worker's pre-aggregated sum of several
// tasks' deltas (proto/fedsim.proto FoldedChunk), in shared memory or
// streamed in chunks.
#include <algorithm>
#include <bit>
#include <cstring>
#include <utility>

#include "rpc/aggregator_client.h"

namespace fedsim {

static_assert(std::endian::native == std::endian::little,
              "the wire's int64 values are little-endian");

AggregatorClient::SumSlot::SumSlot(std::shared_ptr<UpdateSegment> segment, uint32_t slot,
                                   size_t num_values)
    : segment_(std::move(segment)), slot_(slot) {
  // A slot holds 2 * num_params floats' bytes: num_params int64 values.
  values_ = {reinterpret_cast<int64_t*>(segment_->Slot(slot_).data()), num_values};
}

AggregatorClient::SumSlot& AggregatorClient::SumSlot::operator=(SumSlot&& other) noexcept {
  if (this != &other) {
    GiveBack();
    segment_ = std::move(other.segment_);
    slot_ = std::exchange(other.slot_, 0);
    values_ = std::exchange(other.values_, {});
  }
  return *this;
}

AggregatorClient::SumSlot::~SumSlot() { GiveBack(); }

void AggregatorClient::SumSlot::GiveBack() {
  if (segment_ != nullptr) segment_->Release(slot_);
  segment_.reset();
}

std::shared_ptr<UpdateSegment> AggregatorClient::SumSegmentFor(size_t num_values) {
  std::shared_ptr<UpdateSegment> segment;
  {
    absl::MutexLock lock(&segment_mu_);
    segment = LazySegmentLocked(&sum_segment_, &sum_lazy_slots_, num_values, 2,
                                /*hold_words=*/true);
  }
  if (segment == nullptr || num_values == 0 || segment->num_params() != 2 * num_values) {
    return nullptr;
  }
  return segment;
}

std::optional<AggregatorClient::SumSlot> AggregatorClient::LendSumSlot(size_t num_values) {
  std::shared_ptr<UpdateSegment> segment = SumSegmentFor(num_values);
  if (segment == nullptr) return std::nullopt;
  const std::optional<uint32_t> slot = segment->Acquire();
  if (!slot.has_value()) return std::nullopt;
  return SumSlot(std::move(segment), *slot, num_values);
}

absl::StatusOr<bool> AggregatorClient::PushFoldedThrough(
    const WorkerSession& worker, const FoldedBatch& batch, uint32_t want_tasks,
    const std::shared_ptr<UpdateSegment>& segment, uint32_t slot,
    wire::PushUpdateResponse* response) {
  const std::span<const int64_t> values = batch.values();
  segment->Hold(slot);  // the server may read the sum in place until it clears the word
  const grpc::Status status =
      PushFoldedOnce(worker, batch, values, want_tasks, segment.get(), slot, response);
  if (status.ok()) {
    bytes_shared_ += values.size() * sizeof(int64_t);
    return true;
  }
  if (RetireAfterFailure(FromGrpcStatus(status), segment, slot, &sum_segment_)) return false;
  return FromGrpcStatus(status);
}

absl::StatusOr<AggregatorClient::Pushed> AggregatorClient::PushFolded(const WorkerSession& worker,
                                                                      const FoldedBatch& batch,
                                                                      uint32_t want_tasks) {
  const std::span<const int64_t> values = batch.values();
  wire::PushUpdateResponse response;
  bool sent = false;
  if (const std::optional<SumSlot>& own = batch.in_slot;
      own.has_value() && !own->segment_->retired(own->slot_)) {
    // Built in its slot: nothing to copy.
    absl::StatusOr<bool> through =
        PushFoldedThrough(worker, batch, want_tasks, own->segment_, own->slot_, &response);
    if (!through.ok()) return through.status();
    sent = *through;
  }
  // Else a free slot it is copied into, else the stream.
  const std::shared_ptr<UpdateSegment> segment = sent ? nullptr : SumSegmentFor(values.size());
  if (segment != nullptr) {
    if (const std::optional<uint32_t> slot = segment->Acquire(); slot.has_value()) {
      std::memcpy(segment->Slot(*slot).data(), values.data(), values.size() * sizeof(int64_t));
      absl::StatusOr<bool> through =
          PushFoldedThrough(worker, batch, want_tasks, segment, *slot, &response);
      if (!through.ok()) return through.status();
      sent = *through;
      if (sent) segment->Release(*slot);
    }
  }
  if (!sent) {
    const grpc::Status status =
        PushFoldedOnce(worker, batch, values, want_tasks, nullptr, 0, &response);
    if (!status.ok()) return FromGrpcStatus(status);
  }
  bytes_pushed_ += values.size() * sizeof(int64_t);
  Pushed out;
  out.duplicate = response.duplicate();
  out.tasks.assign(std::make_move_iterator(response.mutable_tasks()->begin()),
                   std::make_move_iterator(response.mutable_tasks()->end()));
  return out;
}

grpc::Status AggregatorClient::PushFoldedOnce(const WorkerSession& worker, const FoldedBatch& batch,
                                              std::span<const int64_t> values, uint32_t want_tasks,
                                              const UpdateSegment* segment, uint32_t slot,
                                              wire::PushUpdateResponse* response) {
  wire::FoldedChunk chunk;
  wire::FoldedHeader* header = chunk.mutable_header();
  header->set_worker_id(worker.worker_id);
  header->set_session(worker.session);
  header->set_fold_id(batch.fold_id);
  header->set_group(batch.group);
  header->set_num_params(values.size());
  header->set_want_tasks(want_tasks);
  for (const TaskResult& r : batch.tasks) {
    wire::FoldedTask* t = header->add_tasks();
    t->set_task_id(r.id);
    t->set_client_id(r.client);
    ModelRefToWire(r.base, t->mutable_base());
    t->set_num_examples(r.num_examples);
    t->mutable_metrics()->insert(r.metrics.begin(), r.metrics.end());
  }
  if (segment != nullptr) {
    header->set_shm_segment(segment->name());
    header->set_shm_slot(slot);
  }
  if (link_ != nullptr) {  // one chunk: the header, and the values unless in the slot
    if (segment == nullptr) {
      chunk.set_data(values.data(), values.size() * sizeof(int64_t));
    }
    return ToGrpcStatus(LinkCall(LinkMethod::kPushFolded, chunk, response));
  }
  grpc::ClientContext context;
  Prepare(&context, absl::InfiniteDuration());
  // The metadata leaves with the first chunk, in one batch.
  context.set_initial_metadata_corked(true);
  std::unique_ptr<grpc::ClientWriter<wire::FoldedChunk>> writer =
      stub_->PushFolded(&context, response);
  if (segment != nullptr) {
    // The header alone, with the half-close in the same batch.
    writer->WriteLast(chunk, grpc::WriteOptions());
    return writer->Finish();
  }
  const size_t per_chunk = std::max<size_t>(chunk_bytes_ / sizeof(int64_t), 1);
  size_t offset = 0;
  bool closed = false;  // the last chunk went with the half-close
  do {
    const size_t n = std::min(per_chunk, values.size() - offset);
    chunk.set_offset(offset);
    std::string* data = chunk.mutable_data();
    data->resize(n * sizeof(int64_t));
    if (n > 0) std::memcpy(data->data(), values.data() + offset, n * sizeof(int64_t));
    offset += n;
    const bool last = offset == values.size();
    closed = last;
    const bool written =
        last ? writer->Write(chunk, grpc::WriteOptions().set_last_message()) : writer->Write(chunk);
    chunk.clear_header();         // only the first chunk carries it
    if (!written || last) break;  // !written: the server ended the stream; Finish() says why
  } while (true);
  if (!closed) writer->WritesDone();
  return writer->Finish();
}

}  // namespace fedsim
