// AggregatorClient: the worker's side of the wire protocol (proto/fedsim.proto)
// as plain calls that return absl::Status. It does the chunking: models arrive
// in chunks that are checked and reassembled here; updates leave in chunks of
// at most kMaxChunkBytes with the header in the first one.
//
// Used by the worker process (client/worker.h), the protocol tests and the
// transfer benchmark.
//
// Thread safety: thread-safe; concurrent calls share one channel (gRPC
// multiplexes them over one HTTP/2 connection).
#ifndef FEDSIM_SERVER_AGGREGATOR_CLIENT_H_
#define FEDSIM_SERVER_AGGREGATOR_CLIENT_H_

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "grpcpp/grpcpp.h"
#include "proto/fedsim.grpc.pb.h"
#include "sim/transport.h"

namespace fedsim {

// An insecure channel to `address` ("host:port") with the wire channel
// arguments (no size limits, large flow-control windows). Does not connect yet.
std::shared_ptr<grpc::Channel> NewWireChannel(const std::string& address);

class AggregatorClient {
 public:
  // REQUIRES: 0 < chunk_bytes <= kMaxChunkBytes and a multiple of 4.
  explicit AggregatorClient(std::shared_ptr<grpc::Channel> channel,
                            size_t chunk_bytes = size_t{1} << 20);

  // Deadline for the short RPCs (Register, Heartbeat; GetTask gets its wait_s
  // on top). Default: 10 s.
  void set_rpc_timeout_s(double seconds) { rpc_timeout_s_ = seconds; }

  // Errors are the server's statuses (see server/grpc_transport.h), or
  // Unavailable / DeadlineExceeded when the server cannot be reached.
  absl::StatusOr<wire::RegisterResponse> Register(const std::string& worker_name, uint32_t slots,
                                                  uint32_t protocol_version = 1);
  absl::StatusOr<wire::GetTaskResponse> GetTask(uint64_t worker_id, uint32_t max_tasks,
                                                double wait_s);
  absl::StatusOr<wire::HeartbeatResponse> Heartbeat(uint64_t worker_id,
                                                    const std::vector<TaskId>& in_flight);

  // Downloads one model version. DataLoss when the chunks are not contiguous
  // or their count does not add up to num_params.
  absl::StatusOr<std::vector<float>> FetchModel(uint64_t worker_id, Version version);

  // Uploads one result. Returns true when the server acknowledged it as a
  // duplicate of a result it already had.
  absl::StatusOr<bool> PushUpdate(uint64_t worker_id, const TaskResult& result);

  // Tensor payload bytes moved so far by this client.
  uint64_t bytes_fetched() const { return bytes_fetched_.load(); }
  uint64_t bytes_pushed() const { return bytes_pushed_.load(); }

 private:
  std::unique_ptr<wire::Aggregator::Stub> stub_;
  size_t chunk_bytes_;
  double rpc_timeout_s_ = 10.0;
  std::atomic<uint64_t> bytes_fetched_{0};
  std::atomic<uint64_t> bytes_pushed_{0};
};

}  // namespace fedsim

#endif  // FEDSIM_SERVER_AGGREGATOR_CLIENT_H_
