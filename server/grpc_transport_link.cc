// The Aggregator calls of local links (rpc/local_link.h): workers that
// `fedsim run` forked make them over a socket pair instead of gRPC. Each
// link has one thread here, which reads a call, hands it to the transport
// exactly as the gRPC handlers do (server/grpc_transport_service.cc) and
// writes the answer. A GetTask that cannot be answered at once is parked as
// a LinkPollCall and answered later from whichever thread serves it.
#include <memory>
#include <optional>
#include <string>
#include <utility>

#include "absl/strings/str_cat.h"
#include "server/grpc_transport_impl.h"

namespace fedsim {
namespace grpc_transport_internal {
namespace {

// A GetTask over a link; owns its messages, and deletes itself once answered.
class LinkPollCall final : public PollCall {
 public:
  LinkPollCall(std::shared_ptr<LinkEnd> end, LinkFrame frame)
      : PollCall(&request_, &response_), end_(std::move(end)), frame_(std::move(frame)) {}

  void Answer(const absl::Status& status) override {
    // A link that closed meanwhile has nobody to answer: nothing to do.
    (void)WriteLinkResponse(end_.get(), frame_, status, &response_);
    delete this;
  }

  bool Parse() { return request_.ParseFromString(frame_.payload); }

 private:
  const std::shared_ptr<LinkEnd> end_;
  const LinkFrame frame_;  // the request's frame (its call id)
  wire::GetTaskRequest request_;
  wire::GetTaskResponse response_;
};

absl::Status Unparsable(LinkMethod method) {
  return absl::InvalidArgumentError(
      absl::StrCat("a ", LinkMethodName(method), " call on the local link does not parse"));
}

}  // namespace

void GrpcTransportImpl::ServeLink(int fd, std::string name) {
  auto end = std::make_shared<LinkEnd>(fd);
  absl::MutexLock lock(&links_mu_);
  links_.push_back(end);
  link_threads_.emplace_back([this, end, name = std::move(name)] { ServeLinkLoop(end, name); });
}

void GrpcTransportImpl::ServeLinkLoop(const std::shared_ptr<LinkEnd>& end,
                                      const std::string& name) {
  uint64_t worker = 0;  // the last worker that registered on this link
  LinkFrame frame;
  absl::Status read;
  while ((read = end->Read(&frame)).ok()) {
    if (frame.response) {
      read = absl::DataLossError("the worker sent an answer, not a call");
      break;
    }
    AnswerLinkCall(end, std::move(frame), &worker);
    frame = LinkFrame();
  }
  absl::MutexLock lock(&mu_);
  auto w = workers_.find(worker);
  // Unknown, or told to exit (ReleaseWorkers, Shutdown): its end is expected.
  if (worker == 0 || shutdown_ || w == workers_.end() || w->second.told_finished) return;
  // Its process ended (or broke the protocol): no need to wait for its
  // heartbeats to stop.
  DropWorkerLocked(worker, absl::StrCat("its local link (", name, ") closed: ", read.message()));
}

void GrpcTransportImpl::AnswerLinkCall(const std::shared_ptr<LinkEnd>& end, LinkFrame frame,
                                       uint64_t* worker) {
  absl::Status status;
  const LinkMethod method = frame.method;
  switch (method) {
    case LinkMethod::kRegister: {
      wire::RegisterRequest request;
      wire::RegisterResponse response;
      // The link's other end is a process this one made: on this machine.
      status = request.ParseFromString(frame.payload) ? Register(request, /*local=*/true, &response)
                                                      : Unparsable(method);
      if (status.ok()) *worker = response.worker_id();
      (void)WriteLinkResponse(end.get(), frame, status, &response);
      return;
    }
    case LinkMethod::kGetTask: {
      auto* call = new LinkPollCall(end, std::move(frame));
      if (call->Parse()) {
        GetTask(call);  // answers it or parks it
      } else {
        call->Answer(Unparsable(method));
      }
      return;
    }
    case LinkMethod::kFetchModel: {
      wire::FetchModelRequest request;
      wire::ModelChunk chunk;
      if (!request.ParseFromString(frame.payload)) {
        status = Unparsable(method);
      } else if (absl::StatusOr<FetchedModel> fetched = FetchModel(request); !fetched.ok()) {
        status = fetched.status();
      } else {
        *chunk.mutable_model() = request.model();
        chunk.set_num_params(fetched->params->size());
        if (fetched->in_shm_slot) {
          chunk.set_in_shm_slot(true);
        } else {  // the whole model in the answer
          chunk.set_data(fetched->params->data(), fetched->params->size() * sizeof(float));
          CountBytesSent(chunk.data().size());
        }
      }
      (void)WriteLinkResponse(end.get(), frame, status, &chunk);
      return;
    }
    case LinkMethod::kPushUpdate: {
      wire::PushUpdateResponse response;
      LinkPushUpdate(frame, &response, &status);
      (void)WriteLinkResponse(end.get(), frame, status, &response);
      return;
    }
    case LinkMethod::kPushFolded: {
      wire::PushUpdateResponse response;
      LinkPushFolded(frame, &response, &status);
      (void)WriteLinkResponse(end.get(), frame, status, &response);
      return;
    }
    case LinkMethod::kHeartbeat: {
      wire::HeartbeatRequest request;
      wire::HeartbeatResponse response;
      status = request.ParseFromString(frame.payload) ? Heartbeat(request, &response)
                                                      : Unparsable(method);
      (void)WriteLinkResponse(end.get(), frame, status, &response);
      return;
    }
  }
}

void GrpcTransportImpl::LinkPushUpdate(const LinkFrame& frame, wire::PushUpdateResponse* response,
                                       absl::Status* status) {
  // The steps of a PushUpdate stream (PushReactor), with its one chunk.
  wire::LinkPush push;
  PushClaim claim;
  std::optional<TaskId> claimed;
  UpdateReader reader(num_params_, kMaxUpdateMetrics);
  absl::Status s;
  if (!push.ParseFromString(frame.payload)) {
    s = Unparsable(frame.method);
  } else {
    claim.worker = push.worker_id();
    claim.session = push.session();
    claim.task = push.task_id();
    claim.want_tasks = push.want_tasks();
    s = BeginPush(claim, &claimed);
  }
  if (s.ok()) {
    s = reader.Add(push.chunk(), [this, &claim](DecodedUpdate* update) {
      return CheckPushHeader(claim, update);
    });
  }
  if (s.ok()) s = reader.Finish();
  *status =
      EndPush(std::move(s), claim, claimed, reader.bytes_received(), &reader.update(), response);
}

void GrpcTransportImpl::LinkPushFolded(const LinkFrame& frame, wire::PushUpdateResponse* response,
                                       absl::Status* status) {
  // The steps of a PushFolded stream (FoldedReactor), with its one chunk.
  wire::FoldedChunk chunk;
  FoldedSumReader reader(this);
  absl::Status s =
      chunk.ParseFromString(frame.payload) ? reader.Take(&chunk) : Unparsable(frame.method);
  if (s.ok()) s = reader.Finish();
  *status = reader.End(std::move(s), response);
}

}  // namespace grpc_transport_internal
}  // namespace fedsim
