// AggregatorClient::PushFolded: a worker's pre-aggregated sum of several
// tasks' deltas (proto/fedsim.proto FoldedChunk), streamed in chunks.
#include <algorithm>
#include <bit>
#include <cstring>

#include "rpc/aggregator_client.h"

namespace fedsim {

static_assert(std::endian::native == std::endian::little,
              "the wire's int64 values are little-endian");

absl::StatusOr<AggregatorClient::Pushed> AggregatorClient::PushFolded(const WorkerSession& worker,
                                                                      const FoldedBatch& batch,
                                                                      uint32_t want_tasks) {
  grpc::ClientContext context;
  Prepare(&context, absl::InfiniteDuration());
  // The metadata leaves with the first chunk, in one batch.
  context.set_initial_metadata_corked(true);
  wire::PushUpdateResponse response;
  std::unique_ptr<grpc::ClientWriter<wire::FoldedChunk>> writer =
      stub_->PushFolded(&context, &response);
  wire::FoldedChunk chunk;
  wire::FoldedHeader* header = chunk.mutable_header();
  header->set_worker_id(worker.worker_id);
  header->set_session(worker.session);
  header->set_fold_id(batch.fold_id);
  header->set_group(batch.group);
  header->set_num_params(batch.sum.size());
  header->set_want_tasks(want_tasks);
  for (const TaskResult& r : batch.tasks) {
    wire::FoldedTask* t = header->add_tasks();
    t->set_task_id(r.id);
    t->set_client_id(r.client);
    ModelRefToWire(r.base, t->mutable_base());
    t->set_num_examples(r.num_examples);
    t->mutable_metrics()->insert(r.metrics.begin(), r.metrics.end());
  }
  const std::span<const int64_t> values = batch.sum.values();
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
    const bool sent =
        last ? writer->Write(chunk, grpc::WriteOptions().set_last_message()) : writer->Write(chunk);
    chunk.clear_header();      // only the first chunk carries it
    if (!sent || last) break;  // !sent: the server ended the stream; Finish() says why
  } while (true);
  if (!closed) writer->WritesDone();
  const grpc::Status status = writer->Finish();
  if (!status.ok()) return FromGrpcStatus(status);
  bytes_pushed_ += values.size() * sizeof(int64_t);
  Pushed out;
  out.duplicate = response.duplicate();
  out.tasks.assign(std::make_move_iterator(response.mutable_tasks()->begin()),
                   std::make_move_iterator(response.mutable_tasks()->end()));
  return out;
}

}  // namespace fedsim
