// FetchModel on the transport's side, and the workers' shared-memory
// segments it and the pushes use (rpc/shm_segment.h).
#include <memory>
#include <string>
#include <utility>

#include "absl/strings/str_cat.h"
#include "rpc/wire.h"
#include "server/grpc_transport_impl.h"

namespace fedsim {
namespace grpc_transport_internal {

absl::StatusOr<GrpcTransportImpl::FetchedModel> GrpcTransportImpl::FetchModel(
    const wire::FetchModelRequest& request) {
  std::shared_ptr<const MappedUpdateSegment> segment;
  {
    absl::MutexLock lock(&mu_);
    SeenLocked(request.worker_id(), request.session(), /*live_only=*/false);
    if (!HeldSessionLocked(request.worker_id(), request.session())) {
      NoteUnknownSessionLocked(request.worker_id());
      return UnknownWorker(request.worker_id());
    }
    if (request.shm_slot() > 0) {
      absl::StatusOr<std::shared_ptr<const MappedUpdateSegment>> mapped = WorkerSegmentLocked(
          request.worker_id(), &WorkerState::download_segment, request.shm_segment(), num_params_,
          MappedUpdateSegment::Access::kReadWrite, "downloads");
      if (!mapped.ok()) return mapped.status();
      segment = *std::move(mapped);
    }
  }
  // NotFound must come before the slot is written (the worker then keeps
  // using the slot: rpc/aggregator_client_fetch.cc).
  absl::StatusOr<ModelRef> ref = ModelRefFromWire(request.model());
  if (!ref.ok()) return ref.status();
  FetchedModel fetched;
  fetched.params = store_->Get(*ref);
  if (fetched.params == nullptr) {
    return absl::NotFoundError(
        absl::StrCat("model ", ref->ToString(), " is not kept by the server"));
  }
  if (segment != nullptr) {
    // The worker owns the slot until this call ends: no other writer.
    absl::Status written = segment->WriteSlot(request.shm_slot(), *fetched.params);
    if (!written.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat("FetchModel(", ref->ToString(), "): ", written.message()));
    }
    fetched.in_shm_slot = true;
  }
  return fetched;
}

absl::StatusOr<std::shared_ptr<const MappedUpdateSegment>> GrpcTransportImpl::WorkerSegmentLocked(
    uint64_t worker_id, std::shared_ptr<const MappedUpdateSegment> WorkerState::*member,
    const std::string& name, uint64_t slot_floats, MappedUpdateSegment::Access access,
    const char* what) {
  auto it = workers_.find(worker_id);
  if (it == workers_.end() || !it->second.shared_memory) {
    return absl::FailedPreconditionError(
        absl::StrCat(kShmRefused, "worker ", worker_id, " was not offered shared memory"));
  }
  WorkerState& worker = it->second;
  std::shared_ptr<const MappedUpdateSegment>& segment = worker.*member;
  if (segment == nullptr || segment->name() != name) {
    absl::StatusOr<std::shared_ptr<const MappedUpdateSegment>> mapped =
        MappedUpdateSegment::Open(name, slot_floats, access);
    if (!mapped.ok()) {
      Log(absl::StrCat("worker ", worker.id, " (", worker.name, "): ", mapped.status().message(),
                       "; it streams its ", what, " instead"));
      return absl::FailedPreconditionError(mapped.status().message());
    }
    segment = *std::move(mapped);
  }
  return segment;
}

}  // namespace grpc_transport_internal
}  // namespace fedsim
