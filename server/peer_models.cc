#include "server/peer_models.h"

#include <algorithm>
#include <functional>
#include <map>
#include <set>
#include <thread>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "util/status_macros.h"

namespace fedsim {
namespace {

// Runs fn(0..n-1) on n threads and returns their statuses.
std::vector<absl::Status> InParallel(size_t n, const std::function<absl::Status(size_t)>& fn) {
  std::vector<absl::Status> out(n);
  std::vector<std::thread> threads;
  threads.reserve(n);
  for (size_t k = 0; k < n; ++k) threads.emplace_back([&, k] { out[k] = fn(k); });
  for (std::thread& t : threads) t.join();
  return out;
}

// Maximal runs of consecutive clients with the same home: (first, last, home).
struct Segment {
  ClientId first = 0;
  ClientId last = 0;
  uint64_t home = 0;
};

std::vector<Segment> Segments(const std::vector<uint64_t>& home) {
  std::vector<Segment> out;
  for (ClientId c = 0; c < home.size(); ++c) {
    if (!out.empty() && out.back().home == home[c]) {
      out.back().last = c;
    } else {
      out.push_back(Segment{c, c, home[c]});
    }
  }
  return out;
}

}  // namespace

PeerModels::PeerModels(PeerDirectory* directory, const PeerModelsOptions& options)
    : directory_(directory), options_(options), peers_(options.token) {}

std::string PeerModels::AddressOf(uint64_t id, const std::vector<PeerWorker>& live) const {
  for (const PeerWorker& w : live) {
    if (w.id == id) return w.address;
  }
  return "";
}

absl::Status PeerModels::Init(std::span<const float> x0, Version version) {
  (void)x0;  // published by the rule as client@version; the workers fetch it
  if (options_.tls) {
    return absl::FailedPreconditionError(
        "a decentralized run with worker processes exchanges client models between the workers "
        "(their Peer service), which has no TLS yet; run it without TLS on a network you trust "
        "(the run token still guards every call), or in-process (fedsim run --inprocess)");
  }
  if (options_.local_data) {
    return absl::FailedPreconditionError(
        "a decentralized run whose clients bring their own data (deployment.clients_file or "
        "admit_clients) is not supported yet: its client models would have to live where each "
        "client's folder is; simulate the clients from the scenario's dataset instead");
  }
  FEDSIM_RETURN_IF_ERROR(directory_->AwaitPeer(options_.first_worker_wait));
  version_ = version;
  return Assign(version, /*from_server=*/true);
}

absl::Status PeerModels::Restore(std::span<const std::span<const float>> models,
                                 std::span<const std::span<const float>> trained, Version version) {
  FEDSIM_RETURN_IF_ERROR(Init(models.empty() ? std::span<const float>() : models[0], version));
  // The trained models of the round in progress go to their clients' homes.
  const std::vector<PeerWorker> live = directory_->LivePeers();
  const PeerHomes homes = directory_->Homes();
  for (ClientId c = 0; c < trained.size() && c < homes.home.size(); ++c) {
    if (trained[c].empty()) continue;
    const wire::PeerKey key = PeerKeyOf(c, version, wire::PeerKey::Y);
    FEDSIM_RETURN_IF_ERROR(peers_.Put(AddressOf(homes.home[c], live), key, trained[c]));
  }
  return absl::OkStatus();
}

absl::Status PeerModels::PrepareRound(Version version) {
  if (version != version_) {
    return absl::InternalError(
        absl::StrCat("client models are at version ", version_, ", the round asks for ", version));
  }
  return Assign(version, /*from_server=*/false);
}

absl::Status PeerModels::Trained(ClientId c, Version version, std::vector<float> delta) {
  (void)version;
  if (!delta.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "the update of client ", c, " carries a model; its worker should have kept it"));
  }
  return absl::OkStatus();
}

absl::Status PeerModels::Assign(Version version, bool from_server) {
  absl::Status status;
  for (int attempt = 0; attempt < 8; ++attempt) {
    status = AssignOnce(version, from_server);
    if (status.ok() || absl::IsDataLoss(status) || absl::IsFailedPrecondition(status)) break;
  }
  return status;
}

absl::Status PeerModels::AssignOnce(Version version, bool from_server) {
  const std::vector<PeerWorker> live = directory_->LivePeers();
  const size_t n = options_.num_clients;
  if (live.empty()) {
    FEDSIM_RETURN_IF_ERROR(directory_->AwaitPeer(options_.first_worker_wait));
    return absl::UnavailableError("workers came and went; trying again");
  }
  PeerHomes current = directory_->Homes();
  current.home.resize(n);
  current.backup.resize(n);
  std::vector<ClientId> lost;
  for (ClientId c = 0; !from_server && c < n; ++c) {
    if (current.home[c] == 0) lost.push_back(c);
  }
  if (!lost.empty()) {
    return absl::DataLossError(absl::StrCat(
        "the models of ", lost.size(), " client(s) (", lost.front(), lost.size() > 1 ? ", ..." : "",
        ") were lost: their worker and the worker holding their backup are both gone; continue "
        "from the last checkpoint with --resume"));
  }
  const size_t k = live.size();
  PeerHomes target;
  target.home.resize(n);
  target.backup.resize(n);
  for (ClientId c = 0; c < n; ++c) {
    const size_t w = static_cast<size_t>(uint64_t{c} * k / n);
    target.home[c] = live[w].id;
    target.backup[c] = k >= 2 ? live[(w + 1) % k].id : 0;
  }
  if (!from_server && target == current) return absl::OkStatus();

  // Per worker: the clients it must hold and where each comes from ("" =
  // the server); the clients it may forget.
  struct Plan {
    std::map<std::string, std::vector<uint32_t>> from;
    std::vector<uint32_t> release;
  };
  std::vector<Plan> plans(k);
  for (size_t w = 0; w < k; ++w) {
    const uint64_t id = live[w].id;
    for (ClientId c = 0; c < n; ++c) {
      const bool wanted = target.home[c] == id || target.backup[c] == id;
      const bool has = !from_server && (current.home[c] == id || current.backup[c] == id);
      if (wanted && !has) {
        plans[w].from[from_server ? "" : AddressOf(current.home[c], live)].push_back(c);
      } else if (has && !wanted) {
        plans[w].release.push_back(c);
      }
    }
  }
  // Two phases: every worker fetches what it must now hold, and only then
  // does any worker forget what it no longer needs. In one phase a worker
  // could release a client's model while another was still fetching it
  // from there (seen with slow workers: "this worker does not hold ...").
  auto fetch = [&](size_t w) {
    for (const auto& [source, clients] : plans[w].from) {
      wire::HoldRequest request;
      request.set_version(version);
      request.set_from_peer(source);
      request.set_drop_older(from_server);
      for (uint32_t c : clients) request.add_clients(c);
      FEDSIM_RETURN_IF_ERROR(peers_.Hold(live[w].address, request));
    }
    return absl::OkStatus();
  };
  auto release = [&](size_t w) {
    if (plans[w].release.empty()) return absl::OkStatus();
    wire::HoldRequest request;
    request.set_version(version);
    for (uint32_t c : plans[w].release) request.add_release(c);
    return peers_.Hold(live[w].address, request);
  };
  for (const auto& phase :
       {std::function<absl::Status(size_t)>(fetch), std::function<absl::Status(size_t)>(release)}) {
    std::vector<absl::Status> results = InParallel(k, phase);
    for (size_t w = 0; w < k; ++w) {
      if (results[w].ok()) continue;
      directory_->LogLine(absl::StrCat("moving client models: ", results[w].message()));
      WorkerLost(live);
      return absl::UnavailableError(results[w].message());
    }
  }
  directory_->SetHomes(target);
  if (!from_server) {
    directory_->LogLine(
        absl::StrCat("client models spread over ", k, " worker(s) for version ", version));
  }
  return absl::OkStatus();
}

bool PeerModels::WorkerLost(const std::vector<PeerWorker>& before) {
  // A worker whose gossip failed may only have failed to reach a dead peer:
  // ask every worker, and drop those that do not answer.
  std::vector<absl::Status> answers =
      InParallel(before.size(), [&](size_t k) { return peers_.Ping(before[k].address); });
  bool dropped = false;
  for (size_t k = 0; k < before.size(); ++k) {
    if (answers[k].ok()) continue;
    directory_->DropWorker(before[k].id,
                           absl::StrCat("does not answer peer calls (", answers[k].message(), ")"));
    dropped = true;
  }
  if (dropped) return true;
  const absl::Time give_up = absl::Now() + options_.failure_wait;
  while (true) {
    const std::vector<PeerWorker> now = directory_->LivePeers();
    for (const PeerWorker& w : before) {
      if (std::none_of(now.begin(), now.end(), [&](const PeerWorker& x) { return x.id == w.id; })) {
        return true;
      }
    }
    if (absl::Now() >= give_up) return false;
    absl::SleepFor(absl::Milliseconds(50));
  }
}

absl::StatusOr<MixSummary> PeerModels::Mix(Version version, std::span<const uint8_t> trained,
                                           const MixRows& rows, uint32_t steps,
                                           std::span<float> average,
                                           std::vector<ClientId>* lost_trained) {
  const size_t n = options_.num_clients;
  if (version != version_ || rows.size() != n || trained.size() != n) {
    return absl::InternalError("client models: a mix of the wrong version or size");
  }
  const std::vector<PeerWorker> live = directory_->LivePeers();
  const PeerHomes homes = directory_->Homes();
  absl::StatusOr<MixSummary> summary = MixOnce(version, trained, rows, steps, average, homes, live);
  if (summary.ok()) {
    version_ = version + 1;
    return summary;
  }
  directory_->LogLine(
      absl::StrCat("gossip of version ", version, " failed: ", summary.status().message()));
  const bool worker_lost = WorkerLost(live);
  // The trained models the clients' homes (moved to the backups' workers
  // where a worker is gone) no longer have: those that went with a worker
  // before a copy reached the backup.
  const std::vector<PeerWorker> after = directory_->LivePeers();
  const PeerHomes now = directory_->Homes();
  std::vector<ClientId> lost;
  for (ClientId c = 0; c < n && c < now.home.size(); ++c) {
    if (!trained[c]) continue;
    const wire::PeerKey key = PeerKeyOf(c, version, wire::PeerKey::Y);
    const std::string a = AddressOf(now.home[c], after);
    if (a.empty() || !peers_.FetchFloats(a, key).ok()) lost.push_back(c);
  }
  if (!worker_lost && lost.empty()) return summary.status();
  if (lost_trained != nullptr) *lost_trained = lost;
  directory_->LogLine(
      absl::StrCat(worker_lost ? "a worker was lost" : "trained models were lost",
                   " during the round of version ", version, "; mixing again",
                   lost.empty() ? std::string()
                                : absl::StrCat(" without the trained models of client(s) ",
                                               absl::StrJoin(lost, ", "), ", which went with it")));
  return absl::AbortedError(
      absl::StrCat("a worker was lost during the round of version ", version));
}

absl::StatusOr<MixSummary> PeerModels::MixOnce(Version version, std::span<const uint8_t> trained,
                                               const MixRows& rows, uint32_t steps,
                                               std::span<float> average, const PeerHomes& homes,
                                               const std::vector<PeerWorker>& live) {
  const size_t n = options_.num_clients;
  std::map<uint64_t, std::string> address;
  for (const PeerWorker& w : live) address[w.id] = w.address;
  for (ClientId c = 0; c < n; ++c) {
    if (address.count(homes.home[c]) == 0) {
      return absl::UnavailableError(absl::StrCat("client ", c, "'s worker is not connected"));
    }
  }
  // The workers that are homes, in id order, with their rows' requests.
  std::vector<uint64_t> workers;
  for (const PeerWorker& w : live) {
    if (std::find(homes.home.begin(), homes.home.end(), w.id) != homes.home.end()) {
      workers.push_back(w.id);
    }
  }
  // The first failed call's status.
  auto first_failure = [](const std::vector<absl::Status>& results) -> absl::Status {
    for (const absl::Status& r : results) {
      if (!r.ok()) return r;
    }
    return absl::OkStatus();
  };
  for (uint32_t step = 1; step <= steps; ++step) {
    std::vector<uint64_t> fetched(workers.size(), 0);
    std::vector<absl::Status> results = InParallel(workers.size(), [&](size_t k) {
      wire::GossipRequest request;
      request.set_version(version);
      request.set_step(step);
      request.set_steps(steps);
      std::set<ClientId> cols;
      for (ClientId c = 0; c < n; ++c) {
        if (homes.home[c] != workers[k]) continue;
        wire::MixRow* row = request.add_rows();
        row->set_client(c);
        for (const MixEntry& e : rows[c]) {
          row->add_cols(e.col);
          row->add_weights(e.weight);
          cols.insert(e.col);
        }
      }
      for (ClientId l : cols) {
        wire::GossipRequest::Source* s = request.add_sources();
        s->set_client(l);
        s->set_address(address[homes.home[l]]);
        s->set_stage(trained[l] ? wire::PeerKey::Y : wire::PeerKey::X);
      }
      absl::StatusOr<wire::GossipResponse> r = peers_.Gossip(address[workers[k]], request);
      if (!r.ok()) return r.status();
      fetched[k] = r->bytes_fetched();
      return absl::OkStatus();
    });
    FEDSIM_RETURN_IF_ERROR(first_failure(results));
    for (uint64_t b : fetched) gossip_bytes_ += b;
  }

  // Backups of the new models: each backup holder fetches them from the home.
  std::map<uint64_t, std::map<uint64_t, std::vector<uint32_t>>>
      backups;  // holder -> home -> clients
  for (ClientId c = 0; c < n; ++c) {
    if (homes.backup[c] != 0 && address.count(homes.backup[c]) != 0) {
      backups[homes.backup[c]][homes.home[c]].push_back(c);
    }
  }
  std::vector<uint64_t> holders;
  for (const auto& [holder, by_home] : backups) holders.push_back(holder);
  std::vector<absl::Status> backed = InParallel(holders.size(), [&](size_t k) {
    for (const auto& [home, clients] : backups[holders[k]]) {
      wire::HoldRequest request;
      request.set_version(version + 1);
      request.set_from_peer(address[home]);
      for (uint32_t c : clients) request.add_clients(c);
      FEDSIM_RETURN_IF_ERROR(peers_.Hold(address[holders[k]], request));
    }
    return absl::OkStatus();
  });
  FEDSIM_RETURN_IF_ERROR(first_failure(backed));

  // The average model: one running sum in client order, block by block.
  const std::vector<Segment> segments = Segments(homes.home);
  for (size_t s = 0; s < segments.size(); ++s) {
    wire::AccumulateRequest request;
    request.set_version(version + 1);
    request.set_kind(wire::AccumulateRequest::SUM);
    for (ClientId c = segments[s].first; c <= segments[s].last; ++c) request.add_clients(c);
    if (s > 0) {
      request.set_has_prev(true);
      request.set_prev_address(address[segments[s - 1].home]);
      request.set_prev_client(segments[s - 1].last);
    }
    absl::StatusOr<wire::AccumulateResponse> r =
        peers_.Accumulate(address[segments[s].home], request);
    if (!r.ok()) {
      return r.status();
    }
  }
  const Segment& last = segments.back();
  const wire::PeerKey key = PeerKeyOf(last.last, version + 1, wire::PeerKey::SUM);
  absl::StatusOr<std::vector<double>> sum = peers_.FetchDoubles(address[last.home], key);
  if (!sum.ok()) {
    return sum.status();
  }
  std::vector<double>& mean = *sum;
  for (size_t j = 0; j < mean.size(); ++j) {
    mean[j] /= static_cast<double>(n);
    if (j < average.size()) average[j] = static_cast<float>(mean[j]);
  }
  double dist = 0;
  for (const Segment& seg : segments) {
    wire::AccumulateRequest request;
    request.set_version(version + 1);
    request.set_kind(wire::AccumulateRequest::DISTANCE);
    for (ClientId c = seg.first; c <= seg.last; ++c) request.add_clients(c);
    request.set_sum_address(address[last.home]);
    request.set_sum_client(last.last);
    request.set_num_clients(static_cast<uint32_t>(n));
    request.set_dist_in(dist);
    absl::StatusOr<wire::AccumulateResponse> r = peers_.Accumulate(address[seg.home], request);
    if (!r.ok()) {
      return r.status();
    }
    dist = r->dist_out();
  }
  MixSummary summary;
  summary.consensus_distance = n > 0 ? dist / static_cast<double>(n) : 0.0;
  return summary;
}

absl::StatusOr<std::vector<float>> PeerModels::Get(ClientId c, Version version) {
  return Fetch(c, version, wire::PeerKey::X);
}

absl::StatusOr<std::vector<float>> PeerModels::GetTrained(ClientId c, Version version) {
  return Fetch(c, version, wire::PeerKey::Y);
}

absl::StatusOr<std::vector<float>> PeerModels::Fetch(ClientId c, Version version,
                                                     wire::PeerKey::Stage stage) {
  const std::vector<PeerWorker> live = directory_->LivePeers();
  const PeerHomes homes = directory_->Homes();
  if (c >= homes.home.size()) {
    return absl::NotFoundError(absl::StrCat("client ", c, " has no home worker"));
  }
  const wire::PeerKey key = PeerKeyOf(c, version, stage);
  absl::Status last = absl::NotFoundError(absl::StrCat("no worker holds ", PeerKeyText(key)));
  // y_i lives only at the home; x_i also at the backup.
  for (uint64_t id : {homes.home[c], stage == wire::PeerKey::X ? homes.backup[c] : 0}) {
    const std::string a = AddressOf(id, live);
    if (a.empty()) continue;
    absl::StatusOr<std::vector<float>> x = peers_.FetchFloats(a, key);
    if (x.ok()) return x;
    last = x.status();
  }
  return last;
}

}  // namespace fedsim
