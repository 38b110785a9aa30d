#include "rpc/aggregator_client.h"

#include <optional>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "rpc/auth.h"
#include "rpc/chunker.h"
#include "rpc/raw_chunk.h"

namespace fedsim {

std::shared_ptr<grpc::Channel> NewWireChannel(const std::string& address) {
  return grpc::CreateCustomChannel(address, grpc::InsecureChannelCredentials(),
                                   WireChannelArguments());
}

void AddPushMetadata(grpc::ClientContext* context, const WorkerSession& worker, uint64_t task_id,
                     uint32_t want_tasks) {
  context->AddMetadata(kPushWorkerKey, absl::StrCat(worker.worker_id));
  context->AddMetadata(kPushSessionKey, worker.session);
  context->AddMetadata(kPushTaskKey, absl::StrCat(task_id));
  if (want_tasks > 0) context->AddMetadata(kPushWantKey, absl::StrCat(want_tasks));
}

// The tensor streams go through raw buffers (rpc/raw_chunk.h); their
// methods as the generated stub names them.
constexpr char kFetchModelMethod[] = "/fedsim.wire.Aggregator/FetchModel";
constexpr char kPushUpdateMethod[] = "/fedsim.wire.Aggregator/PushUpdate";

AggregatorClient::AggregatorClient(std::shared_ptr<grpc::Channel> channel, size_t chunk_bytes)
    : channel_(channel),
      stub_(wire::Aggregator::NewStub(channel)),
      fetch_method_(std::in_place, kFetchModelMethod, grpc::internal::RpcMethod::SERVER_STREAMING,
                    channel),
      push_method_(std::in_place, kPushUpdateMethod, grpc::internal::RpcMethod::CLIENT_STREAMING,
                   channel),
      chunk_bytes_(ClampChunkBytes(chunk_bytes)) {}

AggregatorClient::AggregatorClient(std::shared_ptr<LinkClient> link)
    : link_(std::move(link)), chunk_bytes_(kMaxChunkBytes) {}

void AggregatorClient::Prepare(grpc::ClientContext* context, absl::Duration timeout) const {
  if (!token_.empty()) context->AddMetadata(kTokenMetadataKey, BearerValue(token_));
  if (timeout != absl::InfiniteDuration()) context->set_deadline(GrpcTimeout(timeout));
}

absl::StatusOr<wire::RegisterResponse> AggregatorClient::Register(const WorkerIdentity& identity) {
  wire::RegisterRequest request;
  request.set_protocol_version(identity.protocol_version);
  request.set_worker_name(identity.name);
  request.set_slots(identity.slots);
  request.set_build_id(identity.build_id);
  request.set_backend(identity.backend);
  request.set_peer_address(identity.peer_address);
  for (const auto& [mode, fingerprint] : identity.numeric_fingerprints) {
    (*request.mutable_numeric_fingerprints())[mode] = fingerprint;
  }
  for (const std::string& name : identity.local_clients) request.add_local_clients(name);
  for (uint64_t n : identity.local_train_examples) request.add_local_train_examples(n);
  for (uint64_t n : identity.local_test_examples) request.add_local_test_examples(n);
  wire::RegisterResponse response;
  if (link_ != nullptr) {
    if (absl::Status s = LinkCall(LinkMethod::kRegister, request, &response); !s.ok()) return s;
    return response;
  }
  grpc::ClientContext context;
  Prepare(&context, rpc_timeout_);
  grpc::Status status = stub_->Register(&context, request, &response);
  if (!status.ok()) return FromGrpcStatus(status);
  return response;
}

absl::StatusOr<wire::RegisterResponse> AggregatorClient::Register(const std::string& worker_name,
                                                                  uint32_t slots) {
  WorkerIdentity identity;
  identity.name = worker_name;
  identity.slots = slots;
  return Register(identity);
}

absl::StatusOr<wire::GetTaskResponse> AggregatorClient::GetTask(const WorkerSession& worker,
                                                                uint32_t max_tasks, double wait_s,
                                                                std::optional<uint32_t> untrained) {
  wire::GetTaskRequest request;
  request.set_worker_id(worker.worker_id);
  request.set_session(worker.session);
  request.set_max_tasks(max_tasks);
  request.set_wait_s(wait_s);
  if (untrained.has_value()) request.set_untrained(*untrained);
  wire::GetTaskResponse response;
  if (link_ != nullptr) {
    // The server answers by wait_s; there is no deadline to add.
    if (absl::Status s = LinkCall(LinkMethod::kGetTask, request, &response); !s.ok()) return s;
    return response;
  }
  grpc::ClientContext context;
  Prepare(&context, absl::Seconds(wait_s) + rpc_timeout_);
  grpc::Status status = stub_->GetTask(&context, request, &response);
  if (!status.ok()) return FromGrpcStatus(status);
  return response;
}

absl::StatusOr<wire::HeartbeatResponse> AggregatorClient::Heartbeat(
    const WorkerSession& worker, const std::vector<TaskId>& in_flight) {
  wire::HeartbeatRequest request;
  request.set_worker_id(worker.worker_id);
  request.set_session(worker.session);
  for (TaskId id : in_flight) request.add_in_flight(id);
  wire::HeartbeatResponse response;
  if (link_ != nullptr) {
    if (absl::Status s = LinkCall(LinkMethod::kHeartbeat, request, &response); !s.ok()) return s;
    return response;
  }
  grpc::ClientContext context;
  Prepare(&context, rpc_timeout_);
  grpc::Status status = stub_->Heartbeat(&context, request, &response);
  if (!status.ok()) return FromGrpcStatus(status);
  return response;
}

void AggregatorClient::set_update_segment(std::shared_ptr<UpdateSegment> segment) {
  absl::MutexLock lock(&segment_mu_);
  segment_ = std::move(segment);
  lazy_slots_ = 0;
  sum_segment_.reset();
  sum_lazy_slots_ = 0;
  download_segment_.reset();
  download_lazy_slots_ = 0;
}

void AggregatorClient::UseSharedMemory(uint64_t num_params, uint32_t slots,
                                       std::function<void(const absl::Status&)> on_failure) {
  absl::MutexLock lock(&segment_mu_);
  segment_.reset();
  lazy_params_ = num_params;
  lazy_slots_ = slots;
  lazy_failure_ = std::move(on_failure);
  sum_segment_.reset();
  sum_lazy_slots_ = slots + 1;
  download_segment_.reset();
  download_lazy_slots_ = slots;
}

std::shared_ptr<UpdateSegment> AggregatorClient::LazySegmentLocked(
    std::shared_ptr<UpdateSegment>* segment, uint32_t* lazy_slots, uint64_t values, uint64_t scale,
    bool hold_words) {
  if (*segment == nullptr && *lazy_slots > 0 && values == lazy_params_) {
    absl::StatusOr<std::unique_ptr<UpdateSegment>> made =
        UpdateSegment::Create(scale * lazy_params_, *lazy_slots, hold_words);
    *lazy_slots = 0;
    if (made.ok()) {
      *segment = *std::move(made);
    } else if (lazy_failure_) {
      lazy_failure_(made.status());
    }
  }
  return *segment;
}

bool AggregatorClient::RetireAfterFailure(const absl::Status& status,
                                          const std::shared_ptr<UpdateSegment>& segment,
                                          uint32_t slot, std::shared_ptr<UpdateSegment>* current) {
  // The server may still be reading (or writing) the slot: never use it again.
  segment->Retire(slot);
  if (!absl::IsFailedPrecondition(status) || !absl::StartsWith(status.message(), kShmRefused)) {
    return false;
  }
  absl::MutexLock lock(&segment_mu_);  // refused: stream from now on
  if (*current == segment) current->reset();
  return true;
}

absl::StatusOr<bool> AggregatorClient::PushUpdate(const WorkerSession& worker,
                                                  const TaskResult& result) {
  absl::StatusOr<Pushed> pushed = PushUpdateAndLease(worker, result, 0);
  if (!pushed.ok()) return pushed.status();
  return pushed->duplicate;
}

absl::StatusOr<AggregatorClient::Pushed> AggregatorClient::PushUpdateAndLease(
    const WorkerSession& worker, const TaskResult& result, uint32_t want_tasks) {
  return Push(worker, result, nullptr, want_tasks);
}

absl::StatusOr<AggregatorClient::Pushed> AggregatorClient::PushUpdateAndLease(
    const WorkerSession& worker, std::shared_ptr<const TaskResult> result, uint32_t want_tasks) {
  const TaskResult& r = *result;
  return Push(worker, r, std::move(result), want_tasks);
}

absl::StatusOr<AggregatorClient::Pushed> AggregatorClient::Push(const WorkerSession& worker,
                                                                const TaskResult& result,
                                                                std::shared_ptr<const void> owner,
                                                                uint32_t want_tasks) {
  auto answer = [](wire::PushUpdateResponse& response) {
    Pushed out;
    out.duplicate = response.duplicate();
    out.tasks.assign(std::make_move_iterator(response.mutable_tasks()->begin()),
                     std::make_move_iterator(response.mutable_tasks()->end()));
    return out;
  };
  std::shared_ptr<UpdateSegment> segment;
  {
    absl::MutexLock lock(&segment_mu_);
    segment = LazySegmentLocked(&segment_, &lazy_slots_, result.delta.size(), 1);
  }
  wire::PushUpdateResponse response;
  if (segment != nullptr && !result.delta.empty() && result.delta.size() == segment->num_params()) {
    if (const std::optional<uint32_t> slot = segment->Acquire(); slot.has_value()) {
      std::span<float> dst = segment->Slot(*slot);
      std::copy(result.delta.begin(), result.delta.end(), dst.begin());
      const grpc::Status status =
          PushOnce(worker, result, nullptr, segment.get(), *slot, want_tasks, &response);
      if (status.ok()) {
        segment->Release(*slot);
        const uint64_t bytes = result.delta.size() * sizeof(float);
        bytes_pushed_ += bytes;
        bytes_shared_ += bytes;
        return answer(response);
      }
      if (!RetireAfterFailure(FromGrpcStatus(status), segment, *slot, &segment_)) {
        return FromGrpcStatus(status);
      }
    }
  }
  const grpc::Status status = PushOnce(worker, result, owner, nullptr, 0, want_tasks, &response);
  if (!status.ok()) return FromGrpcStatus(status);
  return answer(response);
}

grpc::Status AggregatorClient::PushOnce(const WorkerSession& worker, const TaskResult& result,
                                        const std::shared_ptr<const void>& owner,
                                        const UpdateSegment* segment, uint32_t slot,
                                        uint32_t want_tasks, wire::PushUpdateResponse* response) {
  wire::UpdateChunk chunk;
  wire::UpdateHeader* header = chunk.mutable_header();
  header->set_worker_id(worker.worker_id);
  header->set_session(worker.session);
  header->set_task_id(result.id);
  header->set_client_id(result.client);
  ModelRefToWire(result.base, header->mutable_base());
  header->set_num_examples(result.num_examples);
  header->set_num_params(result.delta.size());
  header->mutable_metrics()->insert(result.metrics.begin(), result.metrics.end());
  if (segment != nullptr) {
    header->set_shm_segment(segment->name());
    header->set_shm_slot(slot);
  }
  if (link_ != nullptr) {
    // The claim a stream's metadata makes, and the update in one chunk.
    wire::LinkPush push;
    push.set_worker_id(worker.worker_id);
    push.set_session(worker.session);
    push.set_task_id(result.id);
    push.set_want_tasks(want_tasks);
    if (segment == nullptr && !result.delta.empty()) {
      chunk.set_data(result.delta.data(), result.delta.size() * sizeof(float));
      bytes_pushed_ += result.delta.size() * sizeof(float);
    }
    *push.mutable_chunk() = std::move(chunk);
    return ToGrpcStatus(LinkCall(LinkMethod::kPushUpdate, push, response));
  }
  grpc::ClientContext context;
  Prepare(&context, absl::InfiniteDuration());
  AddPushMetadata(&context, worker, result.id, want_tasks);
  // The metadata leaves with the first chunk, in one batch.
  context.set_initial_metadata_corked(true);
  std::unique_ptr<grpc::ClientWriter<grpc::ByteBuffer>> writer(
      grpc::internal::ClientWriterFactory<grpc::ByteBuffer>::Create(channel_.get(), *push_method_,
                                                                    &context, response));
  if (segment != nullptr) {
    // The header alone, with the half-close in the same batch; a refusal
    // shows in Finish().
    writer->WriteLast(SerializeRawMessage(chunk), grpc::WriteOptions());
    return writer->Finish();
  }
  const size_t total = result.delta.size();
  bool closed = false;  // the last chunk went with the half-close
  const uint64_t bytes =
      SplitIntoChunks(result.delta, chunk_bytes_, [&](uint64_t offset, std::string_view data) {
        chunk.set_offset(offset);
        // Without an owner, one copy into gRPC's buffer: `result` may be
        // gone before gRPC lets go of a slice that points into it.
        // The server may refuse after the header; Finish() then says why.
        grpc::ByteBuffer message = EncodeChunk(chunk, kUpdateChunkDataField, data, owner);
        chunk.clear_header();  // only the first chunk carries it
        if (offset + data.size() / sizeof(float) == total) {
          closed = true;
          return writer->Write(message, grpc::WriteOptions().set_last_message());
        }
        return writer->Write(message);
      });
  bytes_pushed_ += bytes;
  if (!closed) writer->WritesDone();
  return writer->Finish();
}

absl::StatusOr<wire::RunStatusResponse> AggregatorClient::RunStatus() {
  if (link_ != nullptr) {
    return absl::UnimplementedError("RunStatus is not a call of the local link");
  }
  wire::RunStatusResponse response;
  grpc::ClientContext context;
  Prepare(&context, rpc_timeout_);
  grpc::Status status = stub_->RunStatus(&context, wire::RunStatusRequest(), &response);
  if (!status.ok()) return FromGrpcStatus(status);
  return response;
}

}  // namespace fedsim
