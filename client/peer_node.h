// PeerNode: a worker's share of a peer-to-peer decentralized run
// (core/client_models.h, the Peer service of proto/fedsim.proto). It holds
// the models of the clients the server made it home (or backup) of, keeps
// the models its tasks train (y_i), runs gossip steps for its clients'
// rows, fetching neighbours' models from the workers that hold them, adds
// its clients into the average model's running sum, and serves all of
// these to the other workers and to the server.
//
// Models are named by (client, version, stage[, step]) (wire::PeerKey).
// Every value is computed with the same functions as the in-process rule
// (algorithms/gossip.h: GossipRow, AddToModelSum, AddSquaredDistance), so
// a run gives the same bits on any number of workers.
//
// Memory: the models of the current version and the round in progress; a
// gossip step 1 of version v forgets everything older than v, and step q
// the outputs of step q - 2.
//
// Thread safety: thread-safe; the service runs on gRPC's threads, the
// worker's task threads call Held and KeepTrained.
#ifndef FEDSIM_CLIENT_PEER_NODE_H_
#define FEDSIM_CLIENT_PEER_NODE_H_

#include <cstdio>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "core/model_ref.h"

namespace fedsim {

struct PeerNodeOptions {
  // Where the Peer service listens, "host:port" (port 0 picks one).
  // Default: loopback.
  std::string listen = "127.0.0.1:0";
  // The host other workers and the server dial; "" = listen's host.
  std::string advertise_host;
  // The run token calls must carry and this node's own calls carry; "" =
  // none (then only a loopback listen address is allowed).
  std::string token;
  // Log lines (refused calls); nullptr = quiet.
  FILE* log = nullptr;
};

class PeerNode {
 public:
  using Params = std::shared_ptr<const std::vector<float>>;
  // Fetches a model from the server (the worker's model cache): Hold without
  // a peer takes client@version this way.
  using ServerFetch = std::function<absl::StatusOr<Params>(const ModelRef&)>;

  virtual ~PeerNode() = default;

  // "host:port" to register with the server.
  virtual std::string address() const = 0;

  // x_c at `version` if this worker holds it (as home or backup), else null.
  virtual Params Held(ClientId c, Version version) const = 0;
  // Keeps y_c = x_c + delta of a task trained from x_c at `version`.
  virtual void KeepTrained(ClientId c, Version version, Params y) = 0;
  // Hands y_c to the worker at `address` (the client's backup holder).
  virtual absl::Status Replicate(const std::string& address, ClientId c, Version version,
                                 const std::vector<float>& y) = 0;
  // Payload bytes this node fetched from other workers, and handed to them.
  virtual uint64_t bytes_fetched() const = 0;
  virtual uint64_t bytes_put() const = 0;
};

// Starts the service. Errors: InvalidArgument for a bad address;
// FailedPrecondition for a non-loopback address without a token;
// Unavailable when it cannot be bound.
absl::StatusOr<std::unique_ptr<PeerNode>> StartPeerNode(const PeerNodeOptions& options,
                                                        PeerNode::ServerFetch fetch);

}  // namespace fedsim

#endif  // FEDSIM_CLIENT_PEER_NODE_H_
