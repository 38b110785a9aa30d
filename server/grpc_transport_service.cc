// The Aggregator service's handlers on gRPC's callback API, and the reactors
// of its streams. No handler blocks a thread: a GetTask long poll is parked
// as a PollCall (server/grpc_transport_impl.h), FetchModel writes a chunk
// when the last one is sent, PushUpdate reads a chunk when the last one is
// taken. A worker that waits costs memory, not a thread. See
// server/grpc_transport.h.
#include <algorithm>
#include <optional>
#include <utility>
#include <vector>

#include "absl/functional/function_ref.h"
#include "absl/strings/str_cat.h"
#include "rpc/auth.h"
#include "rpc/chunker.h"
#include "rpc/raw_chunk.h"
#include "rpc/wire.h"
#include "server/admission.h"
#include "server/grpc_transport_impl.h"
#include "util/tsan.h"

namespace fedsim {
namespace grpc_transport_internal {
namespace {

// Sends one model in chunks of at most chunk_bytes, a write at a time, each
// a raw buffer whose data slice points into the model (rpc/raw_chunk.h); or,
// when the model went into the worker's shared-memory slot, one chunk that
// says so.
class FetchReactor final : public grpc::ServerWriteReactor<grpc::ByteBuffer> {
 public:
  FetchReactor(GrpcTransportImpl* transport, const wire::FetchModelRequest& request,
               GrpcTransportImpl::FetchedModel fetched, size_t chunk_bytes)
      : transport_(transport),
        params_(std::move(fetched.params)),
        per_chunk_(ClampChunkBytes(chunk_bytes) / sizeof(float)) {
    *chunk_.mutable_model() = request.model();
    chunk_.set_num_params(params_->size());
    if (fetched.in_shm_slot) {
      chunk_.set_in_shm_slot(true);
      count_ = params_->size();  // all of it, in the slot
      buffer_ = SerializeRawMessage(chunk_);
      TsanRelease(this);
      StartWrite(&buffer_);
      return;
    }
    WriteNext();
  }

  void OnWriteDone(bool ok) override {
    TsanAcquire(this);
    if (!ok) {  // the worker went away; nothing to undo
      TsanRelease(this);
      Finish(grpc::Status::OK);
      return;
    }
    sent_ += count_ * sizeof(float);
    offset_ += count_;
    if (offset_ >= params_->size()) {
      TsanRelease(this);
      Finish(grpc::Status::OK);
      return;
    }
    WriteNext();
  }

  void OnDone() override {
    TsanAcquire(this);
    transport_->CountBytesSent(sent_);
    delete this;
  }

 private:
  // The chunk at offset_ (an empty model is one empty chunk).
  void WriteNext() {
    count_ = std::min<size_t>(per_chunk_, params_->size() - offset_);
    chunk_.set_offset(offset_);
    buffer_ = EncodeChunk(chunk_, kModelChunkDataField,
                          std::string_view(reinterpret_cast<const char*>(params_->data() + offset_),
                                           count_ * sizeof(float)),
                          params_);
    TsanRelease(this);
    StartWrite(&buffer_);
  }

  GrpcTransportImpl* const transport_;
  const ModelStore::Params params_;
  const size_t per_chunk_;
  wire::ModelChunk chunk_;   // the fields besides data
  grpc::ByteBuffer buffer_;  // the chunk being written
  size_t count_ = 0;         // its floats
  uint64_t offset_ = 0;      // floats
  uint64_t sent_ = 0;        // bytes written
};

// Reads one update a chunk at a time; the checks are UpdateReader's and the
// transport's (BeginPush, CheckPushHeader, EndPush).
class PushReactor final : public grpc::ServerReadReactor<grpc::ByteBuffer> {
 public:
  PushReactor(GrpcTransportImpl* transport, const ServerContextBase& context, uint64_t num_params,
              grpc::ByteBuffer* response)
      : transport_(transport), reader_(num_params, kMaxUpdateMetrics), response_(response) {
    // Who the stream says it is decides before anything is read.
    absl::StatusOr<PushClaim> claim = ReadPushClaim(context.client_metadata());
    absl::Status status = claim.status();
    if (status.ok()) {
      claim_ = *std::move(claim);
      status = transport_->BeginPush(claim_, &claimed_);
    }
    if (!status.ok()) {
      End(status);
      return;
    }
    TsanRelease(this);
    StartRead(&buffer_);
  }

  void OnReadDone(bool ok) override {
    TsanAcquire(this);
    if (!ok) {  // the end of the stream (or the call was cancelled)
      End(reader_.Finish());
      return;
    }
    absl::Status status = DecodeChunk(buffer_, kUpdateChunkDataField, &chunk_, &data_);
    if (status.ok()) {
      status = reader_.Add(chunk_, data_.data, [this](DecodedUpdate* update) {
        return transport_->CheckPushHeader(claim_, update);
      });
    }
    if (!status.ok()) {
      End(status);
      return;
    }
    TsanRelease(this);
    StartRead(&buffer_);
  }

  void OnDone() override {
    TsanAcquire(this);
    delete this;
  }

 private:
  void End(absl::Status status) {
    status = transport_->EndPush(std::move(status), claim_, claimed_, reader_.bytes_received(),
                                 &reader_.update(), &answer_);
    if (status.ok()) *response_ = SerializeRawMessage(answer_);
    TsanRelease(this);
    Finish(ToGrpcStatus(status));
  }

  GrpcTransportImpl* const transport_;
  UpdateReader reader_;
  grpc::ByteBuffer* const response_;
  wire::PushUpdateResponse answer_;  // serialized into response_ at the end
  PushClaim claim_;
  std::optional<TaskId> claimed_;  // this stream holds that task's `receiving` mark
  grpc::ByteBuffer buffer_;        // the chunk just read
  wire::UpdateChunk chunk_;        // its fields besides data
  DecodedChunk data_;              // its data, in buffer_'s slices
};

// Reads one pre-aggregated sum a chunk at a time (FoldedSumReader).
class FoldedReactor final : public grpc::ServerReadReactor<wire::FoldedChunk> {
 public:
  FoldedReactor(GrpcTransportImpl* transport, wire::PushUpdateResponse* response)
      : reader_(transport), response_(response) {
    TsanRelease(this);
    StartRead(&chunk_);
  }

  void OnReadDone(bool ok) override {
    TsanAcquire(this);
    if (!ok) {  // the end of the stream (or the call was cancelled)
      End(reader_.Finish());
      return;
    }
    absl::Status status = reader_.Take(&chunk_);
    if (!status.ok()) {
      End(status);
      return;
    }
    TsanRelease(this);
    StartRead(&chunk_);
  }

  void OnDone() override {
    TsanAcquire(this);
    delete this;
  }

 private:
  void End(absl::Status status) {
    status = reader_.End(std::move(status), response_);
    TsanRelease(this);
    Finish(ToGrpcStatus(status));
  }

  FoldedSumReader reader_;
  wire::PushUpdateResponse* const response_;
  wire::FoldedChunk chunk_;
};

// A stream refused before it starts.
template <typename Reactor>
class RefusedStream final : public Reactor {
 public:
  explicit RefusedStream(const absl::Status& status) {
    TsanRelease(this);
    this->Finish(ToGrpcStatus(status));
  }
  void OnDone() override {
    TsanAcquire(this);
    delete this;
  }
};

// A unary call answered at once: the token check, then `handle`.
grpc::ServerUnaryReactor* Answer(GrpcTransportImpl* transport, CallbackServerContext* context,
                                 const char* method, absl::FunctionRef<absl::Status()> handle) {
  absl::Status status = transport->Authenticate(*context, method);
  if (status.ok()) status = handle();
  grpc::ServerUnaryReactor* reactor = context->DefaultReactor();
  reactor->Finish(ToGrpcStatus(status));
  return reactor;
}

}  // namespace

void GrpcPollCall::Answer(const absl::Status& status) {
  TsanRelease(this);
  Finish(ToGrpcStatus(status));
}

void GrpcPollCall::OnCancel() {
  TsanAcquire(this);
  transport_->CancelPoll(this);
}

// Each handler checks the run token first: a call without it reads nothing
// more than its first message (capped by the listener).
grpc::ServerUnaryReactor* AggregatorService::Register(CallbackServerContext* context,
                                                      const wire::RegisterRequest* request,
                                                      wire::RegisterResponse* response) {
  return Answer(t_, context, "Register",
                [&] { return t_->Register(*request, IsLoopbackPeer(context->peer()), response); });
}

grpc::ServerUnaryReactor* AggregatorService::GetTask(CallbackServerContext* context,
                                                     const wire::GetTaskRequest* request,
                                                     wire::GetTaskResponse* response) {
  auto* call = new GrpcPollCall(t_, request, response);
  absl::Status status = t_->Authenticate(*context, "GetTask");
  if (status.ok()) {
    t_->GetTask(call);  // answers it or parks it
  } else {
    call->Answer(status);
  }
  return call;
}

grpc::ServerWriteReactor<grpc::ByteBuffer>* AggregatorService::FetchModel(
    CallbackServerContext* context, const grpc::ByteBuffer* raw_request) {
  absl::Status status = t_->Authenticate(*context, "FetchModel");
  wire::FetchModelRequest request;
  if (status.ok()) status = ParseRawMessage(*raw_request, &request);
  if (status.ok()) {
    absl::StatusOr<GrpcTransportImpl::FetchedModel> fetched = t_->FetchModel(request);
    if (fetched.ok()) return new FetchReactor(t_, request, *std::move(fetched), t_->chunk_bytes());
    status = fetched.status();
  }
  return new RefusedStream<grpc::ServerWriteReactor<grpc::ByteBuffer>>(status);
}

grpc::ServerReadReactor<grpc::ByteBuffer>* AggregatorService::PushUpdate(
    CallbackServerContext* context, grpc::ByteBuffer* response) {
  absl::Status status = t_->Authenticate(*context, "PushUpdate");
  if (!status.ok()) return new RefusedStream<grpc::ServerReadReactor<grpc::ByteBuffer>>(status);
  return new PushReactor(t_, *context, t_->num_params(), response);
}

grpc::ServerReadReactor<wire::FoldedChunk>* AggregatorService::PushFolded(
    CallbackServerContext* context, wire::PushUpdateResponse* response) {
  absl::Status status = t_->Authenticate(*context, "PushFolded");
  if (!status.ok()) return new RefusedStream<grpc::ServerReadReactor<wire::FoldedChunk>>(status);
  return new FoldedReactor(t_, response);
}

grpc::ServerUnaryReactor* AggregatorService::Heartbeat(CallbackServerContext* context,
                                                       const wire::HeartbeatRequest* request,
                                                       wire::HeartbeatResponse* response) {
  return Answer(t_, context, "Heartbeat", [&] { return t_->Heartbeat(*request, response); });
}

grpc::ServerUnaryReactor* AggregatorService::RunStatus(CallbackServerContext* context,
                                                       const wire::RunStatusRequest*,
                                                       wire::RunStatusResponse* response) {
  return Answer(t_, context, "RunStatus", [&] { return t_->RunStatus(response); });
}

}  // namespace grpc_transport_internal
}  // namespace fedsim
