// The Aggregator service's handlers on gRPC's callback API, and the reactors
// of its streams. No handler blocks a thread: a GetTask long poll is parked
// as a PollCall (server/grpc_transport_impl.h), FetchModel writes a chunk
// when the last one is sent, PushUpdate reads a chunk when the last one is
// taken. A worker that waits costs memory, not a thread. See
// server/grpc_transport.h.
#include <algorithm>
#include <optional>
#include <utility>

#include "absl/functional/function_ref.h"
#include "rpc/auth.h"
#include "rpc/chunker.h"
#include "rpc/wire.h"
#include "server/admission.h"
#include "server/grpc_transport_impl.h"
#include "util/tsan.h"

namespace fedsim {
namespace grpc_transport_internal {
namespace {

// Sends one model in chunks of at most chunk_bytes, a write at a time.
class FetchReactor final : public grpc::ServerWriteReactor<wire::ModelChunk> {
 public:
  FetchReactor(GrpcTransportImpl* transport, const wire::FetchModelRequest& request,
               ModelStore::Params params, size_t chunk_bytes)
      : transport_(transport),
        params_(std::move(params)),
        per_chunk_(ClampChunkBytes(chunk_bytes) / sizeof(float)) {
    *chunk_.mutable_model() = request.model();
    chunk_.set_num_params(params_->size());
    WriteNext();
  }

  void OnWriteDone(bool ok) override {
    TsanAcquire(this);
    if (!ok) {  // the worker went away; nothing to undo
      TsanRelease(this);
      Finish(grpc::Status::OK);
      return;
    }
    sent_ += chunk_.data().size();
    offset_ += chunk_.data().size() / sizeof(float);
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
    const size_t count = std::min<size_t>(per_chunk_, params_->size() - offset_);
    chunk_.set_offset(offset_);
    chunk_.mutable_data()->assign(reinterpret_cast<const char*>(params_->data() + offset_),
                                  count * sizeof(float));
    TsanRelease(this);
    StartWrite(&chunk_);
  }

  GrpcTransportImpl* const transport_;
  const ModelStore::Params params_;
  const size_t per_chunk_;
  wire::ModelChunk chunk_;
  uint64_t offset_ = 0;  // floats
  uint64_t sent_ = 0;    // bytes written
};

// Reads one update a chunk at a time; the checks are UpdateReader's and the
// transport's (BeginPush, CheckPushHeader, EndPush).
class PushReactor final : public grpc::ServerReadReactor<wire::UpdateChunk> {
 public:
  PushReactor(GrpcTransportImpl* transport, const ServerContextBase& context, uint64_t num_params,
              wire::PushUpdateResponse* response)
      : transport_(transport), reader_(num_params, kMaxUpdateMetrics), response_(response) {
    absl::Status status = transport_->BeginPush(context, &claim_, &claimed_);
    if (!status.ok()) {
      End(status);
      return;
    }
    TsanRelease(this);
    StartRead(&chunk_);
  }

  void OnReadDone(bool ok) override {
    TsanAcquire(this);
    if (!ok) {  // the end of the stream (or the call was cancelled)
      End(reader_.Finish());
      return;
    }
    absl::Status status = reader_.Add(chunk_, [this](DecodedUpdate* update) {
      return transport_->CheckPushHeader(claim_, update);
    });
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
    status = transport_->EndPush(std::move(status), claimed_, reader_.bytes_received(),
                                 &reader_.update(), response_);
    TsanRelease(this);
    Finish(ToGrpcStatus(status));
  }

  GrpcTransportImpl* const transport_;
  UpdateReader reader_;
  wire::PushUpdateResponse* const response_;
  PushClaim claim_;
  std::optional<TaskId> claimed_;  // this stream holds that task's `receiving` mark
  wire::UpdateChunk chunk_;
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

void PollCall::OnCancel() {
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
  auto* call = new PollCall(t_, request, response);
  absl::Status status = t_->Authenticate(*context, "GetTask");
  if (status.ok()) {
    t_->GetTask(call);  // answers it or parks it
  } else {
    call->Answer(ToGrpcStatus(status));
  }
  return call;
}

grpc::ServerWriteReactor<wire::ModelChunk>* AggregatorService::FetchModel(
    CallbackServerContext* context, const wire::FetchModelRequest* request) {
  absl::Status status = t_->Authenticate(*context, "FetchModel");
  if (status.ok()) {
    absl::StatusOr<ModelStore::Params> params = t_->FetchModel(*request);
    if (params.ok()) return new FetchReactor(t_, *request, *std::move(params), t_->chunk_bytes());
    status = params.status();
  }
  return new RefusedStream<grpc::ServerWriteReactor<wire::ModelChunk>>(status);
}

grpc::ServerReadReactor<wire::UpdateChunk>* AggregatorService::PushUpdate(
    CallbackServerContext* context, wire::PushUpdateResponse* response) {
  absl::Status status = t_->Authenticate(*context, "PushUpdate");
  if (!status.ok()) return new RefusedStream<grpc::ServerReadReactor<wire::UpdateChunk>>(status);
  return new PushReactor(t_, *context, t_->num_params(), response);
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
