// FoldedSumReader: one PushFolded call's chunks on the transport's side
// (server/grpc_transport_folded.cc has its code). Internal to server/.
#ifndef FEDSIM_SERVER_FOLDED_SUM_READER_H_
#define FEDSIM_SERVER_FOLDED_SUM_READER_H_

#include <cstdint>
#include <memory>
#include <vector>

#include "absl/status/status.h"
#include "proto/fedsim.pb.h"
#include "rpc/shm_segment.h"

namespace fedsim {
namespace grpc_transport_internal {

class GrpcTransportImpl;

// One PushFolded's chunks as they arrive, over gRPC (FoldedReactor) or a
// local link (one chunk): the header is checked before any value is taken
// (CheckFoldedHeader), then the values must come contiguous, whole and
// exactly num_params of them, or be in the worker's shared-memory slot.
class FoldedSumReader {
 public:
  explicit FoldedSumReader(GrpcTransportImpl* transport) : transport_(transport) {}

  // Takes the next chunk (its header and data are moved from). OK: read on.
  absl::Status Take(wire::FoldedChunk* chunk);
  // The stream ended: OK when the header and every value came.
  absl::Status Finish() const;
  // Hands the sum to EndFolded with `status` (OK so far, or why the call
  // failed); the call's final status. Called once.
  absl::Status End(absl::Status status, wire::PushUpdateResponse* response);

 private:
  GrpcTransportImpl* const transport_;
  wire::FoldedHeader header_;
  bool have_header_ = false;
  std::vector<int64_t> values_;
  std::shared_ptr<HeldSlot> held_;  // the values in the worker's slot, read in place
  uint64_t received_ = 0;           // values
  uint64_t bytes_ = 0;
};

}  // namespace grpc_transport_internal
}  // namespace fedsim

#endif  // FEDSIM_SERVER_FOLDED_SUM_READER_H_
