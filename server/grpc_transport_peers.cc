// GrpcTransportImpl's part in peer-to-peer decentralized runs
// (server/peer_models.h): the workers' Peer addresses, each client's home
// and backup worker, and what happens to them when a worker is dropped.
#include <algorithm>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "server/grpc_transport_impl.h"

namespace fedsim {
namespace grpc_transport_internal {

ClientModels* GrpcTransportImpl::client_models() {
  if (peer_models_ == nullptr) {
    PeerModelsOptions o;
    {
      absl::MutexLock lock(&mu_);
      o.num_clients = client_examples_.size();
    }
    o.token = options_.token;
    o.tls = options_.security.tls();
    o.local_data = local_data_;
    o.failure_wait = timeout_ + absl::Seconds(1);
    o.first_worker_wait = absl::Seconds(options_.no_worker_timeout_s);
    peer_models_ = std::make_unique<PeerModels>(this, o);
  }
  return peer_models_.get();
}

std::vector<PeerWorker> GrpcTransportImpl::LivePeers() const {
  absl::MutexLock lock(&mu_);
  std::vector<PeerWorker> out;
  for (const auto& [id, worker] : workers_) {
    if (!worker.peer_address.empty()) out.push_back(PeerWorker{id, worker.peer_address});
  }
  std::sort(out.begin(), out.end(),
            [](const PeerWorker& a, const PeerWorker& b) { return a.id < b.id; });
  return out;
}

PeerHomes GrpcTransportImpl::Homes() const {
  absl::MutexLock lock(&mu_);
  return PeerHomes{home_, backup_};
}

void GrpcTransportImpl::SetHomes(PeerHomes homes) {
  absl::MutexLock lock(&mu_);
  home_ = std::move(homes.home);
  backup_ = std::move(homes.backup);
  // A worker that lost a home it was just given is gone: its clients move.
  for (size_t c = 0; c < home_.size(); ++c) {
    if (home_[c] != 0 && workers_.count(home_[c]) == 0) home_[c] = 0;
    if (backup_[c] != 0 && workers_.count(backup_[c]) == 0) backup_[c] = 0;
  }
  ++result_events_;
  ServePollsLocked(/*all=*/true);  // parked polls may now lease their clients' tasks
}

void GrpcTransportImpl::DropWorker(uint64_t id, const std::string& why) {
  absl::MutexLock lock(&mu_);
  DropWorkerLocked(id, why);
}

absl::Status GrpcTransportImpl::AwaitPeer(absl::Duration timeout) {
  absl::MutexLock lock(&mu_);
  auto ready = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (shutdown_ || (options_.interrupt != nullptr && options_.interrupt->load())) return true;
    return std::any_of(workers_.begin(), workers_.end(),
                       [](const auto& w) { return !w.second.peer_address.empty(); });
  };
  const absl::Time deadline = clock_->Now() + timeout;
  while (!ready() && clock_->Now() < deadline) {
    clock_->AwaitWithDeadline(&mu_, absl::Condition(&ready),
                              std::min(deadline, clock_->Now() + absl::Milliseconds(100)));
  }
  if (shutdown_) return absl::CancelledError("transport shut down");
  if (options_.interrupt != nullptr && options_.interrupt->load()) {
    return absl::CancelledError("interrupted");
  }
  if (!ready()) {
    return absl::DeadlineExceededError(absl::StrCat(
        "no worker with a Peer service connected within ", absl::FormatDuration(timeout),
        "; a decentralized run needs at least one (start `fedsim client --server=", address_,
        "`)"));
  }
  return absl::OkStatus();
}

void GrpcTransportImpl::ReassignHomesLocked(uint64_t dead) {
  if (home_.empty()) return;
  std::vector<ClientId> moved, lost;
  uint64_t to = 0;
  for (size_t c = 0; c < home_.size(); ++c) {
    if (backup_[c] == dead) backup_[c] = 0;
    if (home_[c] != dead) continue;
    const uint64_t b = backup_[c];
    home_[c] = (b != 0 && workers_.count(b) != 0) ? b : 0;
    backup_[c] = 0;
    (home_[c] != 0 ? moved : lost).push_back(static_cast<ClientId>(c));
    if (home_[c] != 0) to = home_[c];
  }
  if (!moved.empty()) {
    Log(absl::StrCat("the models of ", moved.size(), " client(s) of worker ", dead,
                     " continue on worker ", to, ", which held their backups"));
  }
  if (!lost.empty()) {
    Log(absl::StrCat("the models of ", lost.size(), " client(s) (", lost.front(),
                     lost.size() > 1 ? ", ..." : "", ") were lost with worker ", dead,
                     ": no other worker held their backups"));
  }
}

bool GrpcTransportImpl::IsHomeLocked(ClientId c, uint64_t worker) const {
  return c < home_.size() && home_[c] != 0 && home_[c] == worker;
}

std::string GrpcTransportImpl::PeerBackupLocked(const TaskSpec& task) const {
  if (home_.empty() || task.base.is_global() || task.kind != TaskKind::kTrain ||
      task.client >= backup_.size()) {
    return "";
  }
  auto w = workers_.find(backup_[task.client]);
  return w == workers_.end() ? "" : w->second.peer_address;
}

bool GrpcTransportImpl::PeerClientLostLocked(ClientId c) const {
  return c < home_.size() && home_[c] == 0;
}

}  // namespace grpc_transport_internal
}  // namespace fedsim
