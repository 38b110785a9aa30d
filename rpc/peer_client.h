// PeerClients: calls to workers' Peer service (proto/fedsim.proto), made by
// the server (holding, gossip and sums, core/client_models.h) and by the
// workers (fetching their neighbours' models from each other). One channel
// per address, kept for the run; every call carries the run token.
//
// Thread safety: thread-safe.
#ifndef FEDSIM_RPC_PEER_CLIENT_H_
#define FEDSIM_RPC_PEER_CLIENT_H_

#include <atomic>
#include <map>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "core/types.h"
#include "proto/fedsim.grpc.pb.h"

namespace fedsim {

// The key of client c's model of `stage` at version v (`step`: Z only).
wire::PeerKey PeerKeyOf(ClientId c, Version v, wire::PeerKey::Stage stage, uint32_t step = 0);

// "client 3 x@5", "client 3 z2@5": for logs and errors.
std::string PeerKeyText(const wire::PeerKey& key);

class PeerClients {
 public:
  // `token`: the run token every call carries ("" = none). `timeout`: the
  // deadline of one call (a whole gossip step included).
  explicit PeerClients(std::string token, absl::Duration timeout = absl::Seconds(600));

  // A model (float32) or running sum (float64, stage SUM) from the worker at
  // `address`. Errors: the call's status with the address and key in the
  // message; DataLoss for chunks that do not add up.
  absl::StatusOr<std::vector<float>> FetchFloats(const std::string& address,
                                                 const wire::PeerKey& key);
  absl::StatusOr<std::vector<double>> FetchDoubles(const std::string& address,
                                                   const wire::PeerKey& key);

  absl::Status Hold(const std::string& address, const wire::HoldRequest& request);
  // Makes the worker at `address` hold `values` under `key` (stage X or Y).
  absl::Status Put(const std::string& address, const wire::PeerKey& key,
                   std::span<const float> values);
  // Whether the worker answers at all (an empty Hold, within `timeout`).
  absl::Status Ping(const std::string& address, absl::Duration timeout = absl::Seconds(5));
  absl::StatusOr<wire::GossipResponse> Gossip(const std::string& address,
                                              const wire::GossipRequest& request);
  absl::StatusOr<wire::AccumulateResponse> Accumulate(const std::string& address,
                                                      const wire::AccumulateRequest& request);

  // Payload bytes fetched and put so far.
  uint64_t bytes_fetched() const { return bytes_fetched_.load(); }
  uint64_t bytes_put() const { return bytes_put_.load(); }

 private:
  wire::Peer::Stub* Stub(const std::string& address);
  void Prepare(grpc::ClientContext* context, absl::Duration timeout) const;
  // The raw payload of `key` and its number of values.
  absl::StatusOr<std::string> FetchBytes(const std::string& address, const wire::PeerKey& key,
                                         size_t value_bytes, uint64_t* values);
  template <typename T>
  absl::StatusOr<std::vector<T>> FetchValues(const std::string& address, const wire::PeerKey& key);

  const std::string token_;
  const absl::Duration timeout_;
  absl::Mutex mu_;
  std::map<std::string, std::unique_ptr<wire::Peer::Stub>> stubs_ ABSL_GUARDED_BY(mu_);
  std::atomic<uint64_t> bytes_fetched_{0};
  std::atomic<uint64_t> bytes_put_{0};
};

}  // namespace fedsim

#endif  // FEDSIM_RPC_PEER_CLIENT_H_
