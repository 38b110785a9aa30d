// Engine tests with fakes: a transport whose results physically arrive in
// the reverse of the order they are due, and a recording algorithm.
#include "sim/engine.h"

#include <algorithm>
#include <condition_variable>
#include <map>
#include <mutex>
#include <thread>

#include "gtest/gtest.h"

namespace fedsim {
namespace {

// Completes tasks on a background thread in reverse submission order, so the
// engine must wait for exactly the result it needs.
class ReversedTransport : public Transport {
 public:
  explicit ReversedTransport(size_t expect) : expect_(expect) {}
  ~ReversedTransport() override {
    if (worker_.joinable()) worker_.join();
  }
  void Submit(const TaskSpec& task) override {
    std::lock_guard<std::mutex> lock(mu_);
    submitted_.push_back(task);
    if (submitted_.size() == expect_ && !worker_.joinable()) {
      worker_ = std::thread([this] {
        std::vector<TaskSpec> tasks;
        {
          std::lock_guard<std::mutex> lock(mu_);
          tasks = submitted_;
        }
        for (auto it = tasks.rbegin(); it != tasks.rend(); ++it) Complete(*it);
      });
    } else if (submitted_.size() > expect_) {
      Complete(task);  // later tasks complete at once
    }
  }
  absl::StatusOr<TaskResult> Await(TaskId id) override {
    std::unique_lock<std::mutex> lock(mu_);
    cv_.wait(lock, [&] { return done_.count(id) > 0; });
    TaskResult r = done_[id];
    done_.erase(id);
    await_order_.push_back(id);
    return r;
  }
  absl::StatusOr<std::optional<TaskResult>> AwaitAny(absl::Time) override {
    return absl::UnimplementedError("virtual clock only");
  }
  void Cancel(TaskId id) override { cancelled_.push_back(id); }
  void Shutdown() override {}

  std::vector<TaskId> await_order_;
  std::vector<TaskId> cancelled_;

 private:
  void Complete(const TaskSpec& t) {
    TaskResult r;
    r.id = t.id;
    r.client = t.client;
    r.base = t.base;
    r.num_examples = 1;
    r.delta = {static_cast<float>(t.client + 1)};
    std::lock_guard<std::mutex> lock(mu_);
    done_[t.id] = r;
    cv_.notify_all();
  }
  size_t expect_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<TaskSpec> submitted_;
  std::map<TaskId, TaskResult> done_;
  std::thread worker_;
};

// Dispatches every idle client once at the start (in the order given), logs
// arrivals, and commits at an optional deadline.
class RecordingAlgorithm : public Algorithm {
 public:
  std::string_view Name() const override { return "recording"; }
  std::vector<Dispatch> Select(const FleetView& fleet, Rng&) override {
    if (started_) return {};
    started_ = true;
    std::vector<Dispatch> out;
    for (ClientId c : order_) {
      EXPECT_FALSE(fleet.client(c).busy);
      out.push_back(Dispatch{c, {}});
    }
    return out;
  }
  absl::Status Accept(const FleetView& fleet, ClientUpdate u) override {
    arrivals_.push_back({u.client, u.arrival_time});
    EXPECT_EQ(u.arrival_time, fleet.now());
    if (refuse_client_ && *refuse_client_ == u.client) {
      return absl::FailedPreconditionError("refused for the test");
    }
    sum_ += u.delta[0];
    return absl::OkStatus();
  }
  bool ReadyToCommit(const FleetView& fleet) const override {
    return deadline_ && fleet.now() >= *deadline_;
  }
  std::optional<VirtualTime> NextDeadline() const override { return deadline_; }
  absl::StatusOr<CommitResult> Commit(const FleetView& fleet,
                                      std::span<float> global) override {
    commit_times_.push_back(fleet.now());
    global[0] += sum_;
    sum_ = 0;
    deadline_.reset();
    return CommitResult{};
  }
  absl::Status SaveState(AlgorithmState*) const override { return absl::OkStatus(); }
  absl::Status LoadState(const AlgorithmState&) override { return absl::OkStatus(); }

  std::vector<ClientId> order_;
  std::optional<VirtualTime> deadline_;
  std::optional<ClientId> refuse_client_;
  std::vector<std::pair<ClientId, double>> arrivals_;
  std::vector<double> commit_times_;
  bool started_ = false;
  float sum_ = 0;
};

class ConstEvaluator : public EvaluatorInterface {
 public:
  EvalResult Evaluate(std::span<const float>) override {
    ++calls;
    return EvalResult{1.0, 1, 2};
  }
  int calls = 0;
};

EngineConfig MakeConfig(std::vector<double> seconds_per_task) {
  EngineConfig c;
  c.seed = 7;
  for (double s : seconds_per_task) {
    ClientInfo info;
    info.num_examples = 1;
    c.clients.push_back(info);
    DeviceProfile p;
    p.seconds_per_example = s;
    c.profiles.push_back(p);
    c.examples_per_task.push_back(1);
  }
  c.initial_params = {0.0f};
  c.max_virtual_s = 100;
  c.eval_every_commits = 0;
  return c;
}

TEST(EngineTest, DeliversInVirtualTimeOrderWhateverThePhysicalOrder) {
  RecordingAlgorithm alg;
  alg.order_ = {0, 1, 2, 3};
  ReversedTransport transport(4);
  ModelStore store;
  ConstEvaluator eval;
  RunObserver obs;
  Engine engine(MakeConfig({3.0, 1.0, 4.0, 2.0}), &alg, &transport, &store, &eval, &obs);
  auto s = engine.Run();
  ASSERT_TRUE(s.ok()) << s.status();
  ASSERT_EQ(alg.arrivals_.size(), 4u);
  EXPECT_EQ(alg.arrivals_[0], (std::pair<ClientId, double>{1, 1.0}));
  EXPECT_EQ(alg.arrivals_[1], (std::pair<ClientId, double>{3, 2.0}));
  EXPECT_EQ(alg.arrivals_[2], (std::pair<ClientId, double>{0, 3.0}));
  EXPECT_EQ(alg.arrivals_[3], (std::pair<ClientId, double>{2, 4.0}));
  EXPECT_EQ(s->stop_reason, "max_virtual_s");
  EXPECT_EQ(s->virtual_time, 100.0);
}

TEST(EngineTest, TiesAreBrokenByDispatchSequence) {
  RecordingAlgorithm alg;
  alg.order_ = {2, 0, 1};  // all finish at t = 5; dispatch order decides
  ReversedTransport transport(3);
  ModelStore store;
  ConstEvaluator eval;
  RunObserver obs;
  Engine engine(MakeConfig({5.0, 5.0, 5.0}), &alg, &transport, &store, &eval, &obs);
  ASSERT_TRUE(engine.Run().ok());
  ASSERT_EQ(alg.arrivals_.size(), 3u);
  EXPECT_EQ(alg.arrivals_[0].first, 2u);
  EXPECT_EQ(alg.arrivals_[1].first, 0u);
  EXPECT_EQ(alg.arrivals_[2].first, 1u);
}

TEST(EngineTest, DeadlineWakesTheAlgorithmAtItsTime) {
  RecordingAlgorithm alg;
  alg.order_ = {0, 1, 2};
  alg.deadline_ = 2.5;  // clients finish at 1, 2, 3
  ReversedTransport transport(3);
  ModelStore store;
  ConstEvaluator eval;
  RunObserver obs;
  EngineConfig config = MakeConfig({1.0, 2.0, 3.0});
  config.eval_every_commits = 1;
  Engine engine(std::move(config), &alg, &transport, &store, &eval, &obs);
  auto s = engine.Run();
  ASSERT_TRUE(s.ok()) << s.status();
  ASSERT_EQ(alg.commit_times_.size(), 1u);
  EXPECT_EQ(alg.commit_times_[0], 2.5);
  // Clients 0 and 1 (deltas 1 and 2) arrived before the deadline.
  EXPECT_EQ(engine.global_model()[0], 3.0f);
  EXPECT_EQ(s->final_version, 1u);
  // Initial evaluation, one after the commit, and none extra at the end.
  EXPECT_EQ(eval.calls, 2);
}

TEST(EngineTest, RefusedUpdatesAreCountedAndChangeNothing) {
  RecordingAlgorithm alg;
  alg.order_ = {0, 1};
  alg.deadline_ = 10;
  alg.refuse_client_ = 1;
  ReversedTransport transport(2);
  ModelStore store;
  ConstEvaluator eval;
  RunObserver obs;
  Engine engine(MakeConfig({1.0, 2.0}), &alg, &transport, &store, &eval, &obs);
  auto s = engine.Run();
  ASSERT_TRUE(s.ok()) << s.status();
  EXPECT_EQ(s->updates_dropped, 1u);
  EXPECT_EQ(engine.global_model()[0], 1.0f);
}

TEST(EngineTest, StalledRunIsAnErrorNotAHang) {
  RecordingAlgorithm alg;  // dispatches nobody
  ReversedTransport transport(1);
  ModelStore store;
  ConstEvaluator eval;
  RunObserver obs;
  EngineConfig config = MakeConfig({1.0});
  config.max_virtual_s = 0;
  config.max_commits = 5;
  Engine engine(std::move(config), &alg, &transport, &store, &eval, &obs);
  auto s = engine.Run();
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_NE(s.status().message().find("stalled"), absl::string_view::npos);
}

TEST(EngineTest, ScriptedDropoutLosesTheTaskInFlight) {
  RecordingAlgorithm alg;
  alg.order_ = {0, 1};
  alg.deadline_ = 10;
  ReversedTransport transport(2);
  ModelStore store;
  ConstEvaluator eval;
  RunObserver obs;
  EngineConfig config = MakeConfig({1.0, 5.0});
  config.scripted.push_back(ScriptedChange{2.0, 1, ScriptedChange::Kind::kDropout});
  Engine engine(std::move(config), &alg, &transport, &store, &eval, &obs);
  auto s = engine.Run();
  ASSERT_TRUE(s.ok()) << s.status();
  ASSERT_EQ(alg.arrivals_.size(), 1u);
  EXPECT_EQ(alg.arrivals_[0].first, 0u);
  ASSERT_EQ(transport.cancelled_.size(), 1u);
  EXPECT_EQ(engine.global_model()[0], 1.0f);
}

}  // namespace
}  // namespace fedsim
