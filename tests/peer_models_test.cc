// Peer-to-peer client models (server/peer_models.h over client/peer_node.h,
// real gRPC on loopback) against the in-process LocalClientModels: the same
// rounds give the same bits, and a worker lost during the gossip costs only
// the trained models it held.
#include "server/peer_models.h"

#include <algorithm>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "algorithms/local_client_models.h"
#include "client/peer_node.h"
#include "gtest/gtest.h"
#include "util/rng.h"

namespace fedsim {
namespace {

constexpr char kToken[] = "0123456789abcdef0123456789abcdef";

// The transport's side, in memory: live workers, homes, and the move of a
// dropped worker's clients to their backups.
class FakeDirectory : public PeerDirectory {
 public:
  std::vector<PeerWorker> LivePeers() const override {
    std::lock_guard<std::mutex> lock(mu_);
    return live_;
  }
  PeerHomes Homes() const override {
    std::lock_guard<std::mutex> lock(mu_);
    return homes_;
  }
  void SetHomes(PeerHomes homes) override {
    std::lock_guard<std::mutex> lock(mu_);
    homes_ = std::move(homes);
  }
  void DropWorker(uint64_t id, const std::string& why) override {
    (void)why;
    std::lock_guard<std::mutex> lock(mu_);
    std::erase_if(live_, [id](const PeerWorker& w) { return w.id == id; });
    for (size_t c = 0; c < homes_.home.size(); ++c) {
      if (homes_.backup[c] == id) homes_.backup[c] = 0;
      if (homes_.home[c] == id) {
        homes_.home[c] = homes_.backup[c];
        homes_.backup[c] = 0;
      }
    }
    ++drops_;
  }
  absl::Status AwaitPeer(absl::Duration timeout) override {
    (void)timeout;
    return LivePeers().empty() ? absl::DeadlineExceededError("no worker") : absl::OkStatus();
  }
  void LogLine(const std::string& line) const override { (void)line; }

  void Add(uint64_t id, std::string address) {
    std::lock_guard<std::mutex> lock(mu_);
    live_.push_back(PeerWorker{id, std::move(address)});
  }
  int drops() const {
    std::lock_guard<std::mutex> lock(mu_);
    return drops_;
  }

 private:
  mutable std::mutex mu_;
  std::vector<PeerWorker> live_;
  PeerHomes homes_;
  int drops_ = 0;
};

std::vector<float> RandomVector(size_t p, uint64_t seed) {
  Rng rng(seed, "peer_models_test", 0);
  std::vector<float> v(p);
  for (float& x : v) x = static_cast<float>(rng.Uniform(-1, 1));
  return v;
}

// A ring of n clients with Metropolis-Hastings weights 1/3; `active` rows
// mix, the others are the identity.
MixRows RingRows(size_t n, const std::vector<uint8_t>& active) {
  MixRows rows(n);
  for (ClientId i = 0; i < n; ++i) {
    if (!active[i]) {
      rows[i] = {MixEntry{i, 1.0f}};
      continue;
    }
    std::vector<ClientId> cols = {static_cast<ClientId>((i + n - 1) % n), i,
                                  static_cast<ClientId>((i + 1) % n)};
    std::sort(cols.begin(), cols.end());
    for (ClientId c : cols) rows[i].push_back(MixEntry{c, static_cast<float>(1.0 / 3.0)});
  }
  return rows;
}

class PeerModelsTest : public ::testing::Test {
 protected:
  static constexpr size_t kClients = 7;
  static constexpr size_t kParams = 333;  // not a multiple of any tile

  void SetUp() override {
    x0_ = RandomVector(kParams, 1);
    for (uint64_t id = 1; id <= 3; ++id) {
      PeerNodeOptions o;
      o.token = kToken;
      auto node = StartPeerNode(o, [this](const ModelRef& ref) -> absl::StatusOr<PeerNode::Params> {
        if (ref.version != 0) return absl::NotFoundError("only version 0 is published");
        return std::make_shared<const std::vector<float>>(x0_);
      });
      ASSERT_TRUE(node.ok()) << node.status();
      directory_.Add(id, (*node)->address());
      nodes_[id] = *std::move(node);
    }
    PeerModelsOptions o;
    o.num_clients = kClients;
    o.token = kToken;
    o.failure_wait = absl::Seconds(1);
    remote_ = std::make_unique<PeerModels>(&directory_, o);
    ASSERT_TRUE(remote_->Init(x0_, 0).ok());
    ASSERT_TRUE(local_.Init(x0_, 0).ok());
  }

  // Client c trains delta at `version`: its home keeps y = x + delta, as a
  // worker does; the local models compute the same.
  // With `copy`, the home hands y to the backup's worker too, as a worker
  // does when its task names one.
  void Train(ClientId c, Version version, uint64_t seed, bool copy = false) {
    const std::vector<float> delta = RandomVector(kParams, seed);
    const PeerHomes homes = directory_.Homes();
    const uint64_t home = homes.home[c];
    PeerNode::Params x = nodes_.at(home)->Held(c, version);
    ASSERT_NE(x, nullptr) << "client " << c << "'s home does not hold its model";
    std::vector<float> y = delta;
    for (size_t j = 0; j < y.size(); ++j) y[j] += (*x)[j];
    nodes_.at(home)->KeepTrained(c, version, std::make_shared<const std::vector<float>>(y));
    if (copy) {
      ASSERT_TRUE(
          nodes_.at(home)->Replicate(nodes_.at(homes.backup[c])->address(), c, version, y).ok());
    }
    ASSERT_TRUE(remote_->Trained(c, version, {}).ok());
    ASSERT_TRUE(local_.Trained(c, version, delta).ok());
  }

  void ExpectSameModels(Version version) {
    for (ClientId c = 0; c < kClients; ++c) {
      absl::StatusOr<std::vector<float>> a = local_.Get(c, version);
      absl::StatusOr<std::vector<float>> b = remote_->Get(c, version);
      ASSERT_TRUE(a.ok() && b.ok()) << c;
      EXPECT_EQ(*a, *b) << "client " << c;
    }
  }

  std::vector<float> x0_;
  FakeDirectory directory_;
  std::map<uint64_t, std::unique_ptr<PeerNode>> nodes_;
  std::unique_ptr<PeerModels> remote_;
  LocalClientModels local_{kClients};
};

TEST_F(PeerModelsTest, RoundsOnThreeWorkersGiveTheBitsOfOneProcess) {
  // Blocks of consecutive clients, each backed up on the next worker.
  const PeerHomes homes = directory_.Homes();
  EXPECT_EQ(homes.home, (std::vector<uint64_t>{1, 1, 1, 2, 2, 3, 3}));
  EXPECT_EQ(homes.backup, (std::vector<uint64_t>{2, 2, 2, 3, 3, 1, 1}));
  for (Version v = 0; v < 3; ++v) {
    SCOPED_TRACE(v);
    ASSERT_TRUE(remote_->PrepareRound(v).ok());
    ASSERT_TRUE(local_.PrepareRound(v).ok());
    std::vector<uint8_t> active(kClients, 0);
    for (ClientId c = 0; c < kClients; ++c) {
      if ((c + v) % 3 == 0) continue;  // sits this round out
      active[c] = 1;
      Train(c, v, 100 * v + c + 2);
    }
    const MixRows rows = RingRows(kClients, active);
    std::vector<float> avg_local(kParams), avg_remote(kParams);
    absl::StatusOr<MixSummary> a = local_.Mix(v, active, rows, 2, avg_local, nullptr);
    std::vector<ClientId> lost;
    absl::StatusOr<MixSummary> b = remote_->Mix(v, active, rows, 2, avg_remote, &lost);
    ASSERT_TRUE(a.ok()) << a.status();
    ASSERT_TRUE(b.ok()) << b.status();
    EXPECT_EQ(avg_local, avg_remote);
    EXPECT_EQ(a->consensus_distance, b->consensus_distance);
    EXPECT_GT(b->consensus_distance, 0);
    ExpectSameModels(v + 1);
  }
  EXPECT_GT(remote_->gossip_bytes(), 0u);  // neighbours were fetched across workers
}

// Workers that join after the start take their blocks from the first one at
// the next round, and the first one forgets what it no longer needs only
// after they have fetched it (fetches and releases used to run in one
// parallel phase: a slow fetch then found the model already gone).
TEST_F(PeerModelsTest, WorkersJoiningLaterFetchTheirBlocksBeforeAnyoneForgetsThem) {
  for (int trial = 0; trial < 5; ++trial) {
    SCOPED_TRACE(trial);
    FakeDirectory directory;
    directory.Add(1, nodes_.at(1)->address());
    PeerModelsOptions o;
    o.num_clients = kClients;
    o.token = kToken;
    o.failure_wait = absl::Seconds(1);
    PeerModels models(&directory, o);
    ASSERT_TRUE(models.Init(x0_, 0).ok());
    EXPECT_EQ(directory.Homes().home, std::vector<uint64_t>(kClients, 1));
    directory.Add(2, nodes_.at(2)->address());
    directory.Add(3, nodes_.at(3)->address());
    absl::Status prepared = models.PrepareRound(0);
    ASSERT_TRUE(prepared.ok()) << prepared;
    const PeerHomes homes = directory.Homes();
    EXPECT_EQ(homes.home, (std::vector<uint64_t>{1, 1, 1, 2, 2, 3, 3}));
    for (ClientId c = 0; c < kClients; ++c) {
      ASSERT_NE(nodes_.at(homes.home[c])->Held(c, 0), nullptr) << "home of client " << c;
      ASSERT_NE(nodes_.at(homes.backup[c])->Held(c, 0), nullptr) << "backup of client " << c;
      EXPECT_EQ(*nodes_.at(homes.home[c])->Held(c, 0), x0_) << c;
    }
    // Worker 1 keeps only its own block and the backups it holds.
    EXPECT_EQ(nodes_.at(1)->Held(3, 0), nullptr);
    EXPECT_EQ(nodes_.at(1)->Held(4, 0), nullptr);
  }
}

TEST_F(PeerModelsTest, WorkerLostDuringGossipCostsOnlyTheTrainedModelsItHeld) {
  ASSERT_TRUE(remote_->PrepareRound(0).ok());
  ASSERT_TRUE(local_.PrepareRound(0).ok());
  std::vector<uint8_t> active(kClients, 1);
  for (ClientId c = 0; c < kClients; ++c) Train(c, 0, c + 50);
  // Worker 2 (clients 3 and 4) dies after its clients trained.
  nodes_.at(2).reset();
  std::vector<float> avg(kParams);
  std::vector<ClientId> lost;
  absl::StatusOr<MixSummary> failed =
      remote_->Mix(0, active, RingRows(kClients, active), 2, avg, &lost);
  EXPECT_EQ(failed.status().code(), absl::StatusCode::kAborted) << failed.status();
  EXPECT_EQ(lost, (std::vector<ClientId>{3, 4}));
  EXPECT_EQ(directory_.drops(), 1);
  // Their models continue on worker 3, which held the backups.
  EXPECT_EQ(directory_.Homes().home, (std::vector<uint64_t>{1, 1, 1, 3, 3, 3, 3}));

  // Mixed again with clients 3 and 4 as not trained: the same bits as a
  // process in which they never trained.
  for (ClientId c : lost) active[c] = 0;
  LocalClientModels reference(kClients);
  ASSERT_TRUE(reference.Init(x0_, 0).ok());
  for (ClientId c = 0; c < kClients; ++c) {
    if (active[c]) {
      ASSERT_TRUE(reference.Trained(c, 0, RandomVector(kParams, c + 50)).ok());
    }
  }
  const MixRows rows = RingRows(kClients, active);
  std::vector<float> avg_ref(kParams);
  absl::StatusOr<MixSummary> want = reference.Mix(0, active, rows, 2, avg_ref, nullptr);
  absl::StatusOr<MixSummary> got = remote_->Mix(0, active, rows, 2, avg, &lost);
  ASSERT_TRUE(want.ok() && got.ok()) << got.status();
  EXPECT_EQ(avg, avg_ref);
  EXPECT_EQ(want->consensus_distance, got->consensus_distance);
  for (ClientId c = 0; c < kClients; ++c) {
    EXPECT_EQ(*reference.Get(c, 1), *remote_->Get(c, 1)) << c;
  }
  // The next round spreads the clients over the two workers left.
  ASSERT_TRUE(remote_->PrepareRound(1).ok());
  EXPECT_EQ(directory_.Homes().home, (std::vector<uint64_t>{1, 1, 1, 1, 3, 3, 3}));
  for (ClientId c = 0; c < kClients; ++c) {
    EXPECT_EQ(*reference.Get(c, 1), *remote_->Get(c, 1)) << c;
  }
}

TEST_F(PeerModelsTest, WorkerLostAfterCopyingItsTrainedModelsCostsNothing) {
  ASSERT_TRUE(remote_->PrepareRound(0).ok());
  ASSERT_TRUE(local_.PrepareRound(0).ok());
  std::vector<uint8_t> active(kClients, 1);
  for (ClientId c = 0; c < kClients; ++c) Train(c, 0, c + 70, /*copy=*/true);
  nodes_.at(2).reset();
  const MixRows rows = RingRows(kClients, active);
  std::vector<float> avg(kParams), avg_local(kParams);
  std::vector<ClientId> lost = {99};
  absl::StatusOr<MixSummary> failed = remote_->Mix(0, active, rows, 2, avg, &lost);
  EXPECT_EQ(failed.status().code(), absl::StatusCode::kAborted) << failed.status();
  EXPECT_TRUE(lost.empty()) << "client " << lost.front();
  // Mixed again as it was: the round of one process in which all trained.
  absl::StatusOr<MixSummary> got = remote_->Mix(0, active, rows, 2, avg, &lost);
  absl::StatusOr<MixSummary> want = local_.Mix(0, active, rows, 2, avg_local, nullptr);
  ASSERT_TRUE(got.ok() && want.ok()) << got.status();
  EXPECT_EQ(avg, avg_local);
  EXPECT_EQ(got->consensus_distance, want->consensus_distance);
  ExpectSameModels(1);
}

TEST_F(PeerModelsTest, PeerCallsWithoutTheRunTokenAreRefused) {
  PeerClients stranger("");
  wire::PeerKey key;
  key.set_client(0);
  absl::StatusOr<std::vector<float>> got =
      stranger.FetchFloats(directory_.LivePeers()[0].address, key);
  EXPECT_EQ(got.status().code(), absl::StatusCode::kUnauthenticated) << got.status();
  PeerClients wrong("ffffffffffffffffffffffffffffffff");
  got = wrong.FetchFloats(directory_.LivePeers()[0].address, key);
  EXPECT_EQ(got.status().code(), absl::StatusCode::kUnauthenticated) << got.status();
}

}  // namespace
}  // namespace fedsim
