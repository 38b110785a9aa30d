// PeerModels: the ClientModels (core/client_models.h) of a decentralized
// run with worker processes. The models live on the workers' Peer services
// (client/peer_node.h); this class only directs them:
//
//  - Homes. Client i's home is one worker: it holds x_i, trains i's tasks
//    (the transport leases them only there) and keeps y_i. Clients are
//    split into consecutive blocks over the connected workers in worker-id
//    order; a worker that joins or leaves moves blocks at the next round
//    (the new home fetches x_i from the old one).
//  - Backups. With two or more workers, the next worker in that order holds
//    a copy of every x_i of a block, refreshed after each round. When a
//    worker is dropped the transport makes the backup holder the home of its
//    clients at once, so a task it held is re-run there from the same model
//    (the run's result does not change). A worker also hands each trained
//    y_i to the backup's worker before it reports the task (wire
//    Task.peer_backup), so a trained model outlives its worker too; one that
//    did not get there is lost, and Mix names it.
//  - Gossip. Each step, every worker gets its clients' rows and the homes of
//    the columns they read, fetches what it does not hold from the other
//    workers, and computes its rows; the steps are barriers.
//  - The average model. Running sums in client order: each block continues
//    the previous block's sum (fetched worker to worker); the server fetches
//    only the final sum, divides it by N, and sends nothing back. The
//    consensus distance is a second pass of the same kind with a scalar.
//
// So the server never receives a client model, except through Get (the
// evaluation's sample of client models, and checkpoints).
//
// Thread safety: not thread-safe; the engine thread calls it. It calls the
// PeerDirectory (the transport) without holding any lock of its own.
#ifndef FEDSIM_SERVER_PEER_MODELS_H_
#define FEDSIM_SERVER_PEER_MODELS_H_

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/time/time.h"
#include "core/client_models.h"
#include "rpc/peer_client.h"

namespace fedsim {

struct PeerWorker {
  uint64_t id = 0;
  std::string address;  // its Peer service
};

// Per client: the worker that is its home and the one holding its backup
// (0 = none).
struct PeerHomes {
  std::vector<uint64_t> home;
  std::vector<uint64_t> backup;
  bool operator==(const PeerHomes&) const = default;
};

// What PeerModels needs of the transport.
class PeerDirectory {
 public:
  virtual ~PeerDirectory() = default;
  // Connected workers with a Peer service, ascending id.
  virtual std::vector<PeerWorker> LivePeers() const = 0;
  virtual PeerHomes Homes() const = 0;
  virtual void SetHomes(PeerHomes homes) = 0;
  // A worker that failed a call of the server: dropped at once, like one
  // silent for too long (its leased tasks go back to the queue).
  virtual void DropWorker(uint64_t id, const std::string& why) = 0;
  // Blocks until a worker with a Peer service is connected, for at most
  // `timeout` (on the transport's clock): DeadlineExceeded then.
  virtual absl::Status AwaitPeer(absl::Duration timeout) = 0;
  virtual void LogLine(const std::string& line) const = 0;
};

struct PeerModelsOptions {
  size_t num_clients = 0;
  std::string token;  // the run token
  // The transport has TLS, or the clients bring their own data: refused
  // (the Peer service has no TLS yet; homes do not follow data folders yet).
  bool tls = false;
  bool local_data = false;
  // After a failed call, how long to wait for the transport to notice a
  // worker gone (its heartbeat timeout and a margin).
  absl::Duration failure_wait = absl::Seconds(6);
  // How long Init waits for a first worker.
  absl::Duration first_worker_wait = absl::Seconds(300);
};

class PeerModels final : public ClientModels {
 public:
  PeerModels(PeerDirectory* directory, const PeerModelsOptions& options);

  absl::Status Init(std::span<const float> x0, Version version) override;
  absl::Status Restore(std::span<const std::span<const float>> models,
                       std::span<const std::span<const float>> trained, Version version) override;
  absl::Status PrepareRound(Version version) override;
  absl::Status Trained(ClientId c, Version version, std::vector<float> delta) override;
  // After a failed gossip step (a worker gone): Aborted, naming in
  // *lost_trained the trained clients whose y_i no worker holds any more;
  // the rule mixes again without them.
  absl::StatusOr<MixSummary> Mix(Version version, std::span<const uint8_t> trained,
                                 const MixRows& rows, uint32_t steps, std::span<float> average,
                                 std::vector<ClientId>* lost_trained) override;
  absl::StatusOr<std::vector<float>> Get(ClientId c, Version version) override;
  absl::StatusOr<std::vector<float>> GetTrained(ClientId c, Version version) override;
  bool remote() const override { return true; }

  // Payload bytes the workers fetched from each other in gossip steps.
  uint64_t gossip_bytes() const { return gossip_bytes_; }

 private:
  // Homes and backups for the workers connected now; moves models where
  // they changed (from the server at Init/Restore: `from_server`).
  absl::Status Assign(Version version, bool from_server);
  absl::Status AssignOnce(Version version, bool from_server);
  // After a failed call: drops the workers of `before` that do not answer
  // at all, else waits for the transport to notice one gone; says whether
  // one of `before` is gone.
  bool WorkerLost(const std::vector<PeerWorker>& before);
  absl::StatusOr<MixSummary> MixOnce(Version version, std::span<const uint8_t> trained,
                                     const MixRows& rows, uint32_t steps, std::span<float> average,
                                     const PeerHomes& homes, const std::vector<PeerWorker>& live);
  std::string AddressOf(uint64_t id, const std::vector<PeerWorker>& live) const;
  // Client c's model of `stage` at `version` from its home (then its backup).
  absl::StatusOr<std::vector<float>> Fetch(ClientId c, Version version, wire::PeerKey::Stage stage);

  PeerDirectory* const directory_;
  const PeerModelsOptions options_;
  PeerClients peers_;
  Version version_ = 0;
  uint64_t gossip_bytes_ = 0;
};

}  // namespace fedsim

#endif  // FEDSIM_SERVER_PEER_MODELS_H_
