// The engine on the wall clock over a transport that tracks connected
// clients (a deployment whose clients bring their own data): a client is
// available exactly while it is connected, the change is logged, and the
// run waits for an absent client rather than reporting a stall.
#include <map>
#include <mutex>
#include <optional>
#include <thread>
#include <utility>
#include <vector>

#include "gtest/gtest.h"
#include "sim/engine.h"
#include "sim/engine_test_util.h"

namespace fedsim {
namespace {

// Completes every task at once; who is connected is set by the test.
class ConnectedTransport : public Transport {
 public:
  explicit ConnectedTransport(std::vector<bool> connected) : connected_(std::move(connected)) {}
  void Submit(const TaskSpec& task) override {
    std::lock_guard<std::mutex> lock(mu_);
    submitted_.push_back(task);
    if (connect_after_ && submitted_.size() == connect_after_->first) {
      connected_[connect_after_->second] = true;
      changes_.emplace_back(connect_after_->second, true);
    }
    if (blink_after_ && submitted_.size() == blink_after_->first) {
      changes_.emplace_back(blink_after_->second, false);
      changes_.emplace_back(blink_after_->second, true);
    }
    TaskResult r;
    r.id = task.id;
    r.client = task.client;
    r.base = task.base;
    r.num_examples = 1;
    r.delta = {1.0f};
    inbox_.push_back(r);
  }
  absl::StatusOr<TaskResult> Await(TaskId) override {
    return absl::UnimplementedError("wall clock only");
  }
  absl::StatusOr<std::optional<TaskResult>> AwaitAny(absl::Time deadline) override {
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (!inbox_.empty()) {
        TaskResult r = inbox_.front();
        inbox_.erase(inbox_.begin());
        return std::optional<TaskResult>(r);
      }
    }
    std::this_thread::sleep_until(
        absl::ToChronoTime(std::min(deadline, absl::Now() + absl::Milliseconds(5))));
    return std::optional<TaskResult>();
  }
  std::optional<std::vector<bool>> ConnectedClients() const override {
    std::lock_guard<std::mutex> lock(mu_);
    return connected_;
  }
  std::vector<std::pair<ClientId, bool>> TakeConnectionChanges() override {
    std::lock_guard<std::mutex> lock(mu_);
    std::vector<std::pair<ClientId, bool>> out;
    out.swap(changes_);
    return out;
  }
  void Cancel(TaskId) override {}
  void Shutdown() override {}

  // `client` goes away and comes back as the `n`-th task is submitted,
  // between two looks of the engine.
  void BlinkAfter(size_t n, ClientId client) {
    std::lock_guard<std::mutex> lock(mu_);
    blink_after_ = {n, client};
  }
  // Connects `client` as the `n`-th task is submitted.
  void ConnectAfter(size_t n, ClientId client) {
    std::lock_guard<std::mutex> lock(mu_);
    connect_after_ = {n, client};
  }
  void SetConnected(ClientId c, bool on) {
    std::lock_guard<std::mutex> lock(mu_);
    connected_[c] = on;
    changes_.emplace_back(c, on);
  }
  std::vector<TaskSpec> submitted() const {
    std::lock_guard<std::mutex> lock(mu_);
    return submitted_;
  }

 private:
  mutable std::mutex mu_;
  std::vector<bool> connected_;
  std::vector<TaskSpec> submitted_;
  std::vector<TaskResult> inbox_;
  std::optional<std::pair<size_t, ClientId>> connect_after_;
  std::optional<std::pair<size_t, ClientId>> blink_after_;
  std::vector<std::pair<ClientId, bool>> changes_;
};

class AvailabilityLog : public RunObserver {
 public:
  void OnAvailability(VirtualTime, ClientId client, bool on) override {
    std::lock_guard<std::mutex> lock(mu_);
    changes_.emplace_back(client, on);
  }
  std::vector<std::pair<ClientId, bool>> changes() const {
    std::lock_guard<std::mutex> lock(mu_);
    return changes_;
  }

 private:
  mutable std::mutex mu_;
  std::vector<std::pair<ClientId, bool>> changes_;
};

// `clients` clients of 1 ms tasks, on the wall clock, until `commits`.
EngineConfig WallConfig(size_t clients, uint64_t commits) {
  EngineConfig config = MakeConfig(std::vector<double>(clients, 0.001));
  config.wall_clock = true;
  config.max_virtual_s = 0;
  config.max_commits = commits;
  return config;
}

TEST(EngineWallClockTest, AClientIsAvailableExactlyWhileConnected) {
  ConnectedTransport transport({true, false, true});
  CommitEachArrival alg;
  ModelStore store;
  ConstEvaluator eval;
  AvailabilityLog log;
  EngineConfig config = WallConfig(3, 400);
  Engine engine(std::move(config), &alg, &transport, &store, &eval, &log);

  // Client 1 connects once the others have trained a while.
  transport.ConnectAfter(40, 1);
  absl::StatusOr<RunSummary> s = engine.Run();
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_EQ(s->final_version, 400u);

  const std::vector<TaskSpec> tasks = transport.submitted();
  size_t first_of_1 = tasks.size();
  for (size_t i = 0; i < tasks.size(); ++i) {
    if (tasks[i].client == 1) {
      first_of_1 = i;
      break;
    }
  }
  EXPECT_GE(first_of_1, 40u) << "client 1 trained before it connected";
  EXPECT_LT(first_of_1, tasks.size()) << "client 1 never trained after it connected";
  // Logged: away at the start, then back.
  EXPECT_EQ(log.changes(), (std::vector<std::pair<ClientId, bool>>{{1, false}, {1, true}}));
}

// Away and back between two looks at the transport: both changes count.
TEST(EngineWallClockTest, ABriefAbsenceIsNotMissed) {
  ConnectedTransport transport({true, true});
  CommitEachArrival alg;
  ModelStore store;
  ConstEvaluator eval;
  AvailabilityLog log;
  EngineConfig config = WallConfig(2, 50);
  Engine engine(std::move(config), &alg, &transport, &store, &eval, &log);
  transport.BlinkAfter(10, 1);
  absl::StatusOr<RunSummary> s = engine.Run();
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_EQ(log.changes(), (std::vector<std::pair<ClientId, bool>>{{1, false}, {1, true}}));
}

TEST(EngineWallClockTest, WaitsForAnAbsentClientInsteadOfStalling) {
  ConnectedTransport transport({false});
  CommitEachArrival alg;
  ModelStore store;
  ConstEvaluator eval;
  AvailabilityLog log;
  EngineConfig config = WallConfig(1, 3);
  Engine engine(std::move(config), &alg, &transport, &store, &eval, &log);
  std::thread connector([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
    transport.SetConnected(0, true);
  });
  const absl::Time start = absl::Now();
  absl::StatusOr<RunSummary> s = engine.Run();
  connector.join();
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_EQ(s->final_version, 3u);
  EXPECT_GE(absl::Now() - start, absl::Milliseconds(300));
}

TEST(EngineWallClockTest, WithEveryoneConnectedAndNothingToDoItStillReportsTheStall) {
  ConnectedTransport transport({true});
  struct Idle : CommitEachArrival {
    absl::StatusOr<std::vector<Dispatch>> Select(const FleetView&, Rng&) override {
      return std::vector<Dispatch>();
    }
  } alg;
  ModelStore store;
  ConstEvaluator eval;
  RunObserver obs;
  EngineConfig config = WallConfig(1, 3);
  Engine engine(std::move(config), &alg, &transport, &store, &eval, &obs);
  absl::StatusOr<RunSummary> s = engine.Run();
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.status().code(), absl::StatusCode::kFailedPrecondition);
}

}  // namespace
}  // namespace fedsim
