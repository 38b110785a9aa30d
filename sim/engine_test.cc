// Engine tests with fakes: a transport whose results physically arrive in
// the reverse of the order they are due, and a recording algorithm.
#include "sim/engine.h"

#include <algorithm>
#include <condition_variable>
#include <map>
#include <mutex>
#include <thread>

#include "config/memory.h"
#include "gtest/gtest.h"
#include "sim/engine_test_util.h"

namespace fedsim {
namespace {

// Completes tasks on a background thread in reverse submission order (with
// real delays), so the engine must wait for exactly the result it needs.
class ReversedTransport : public Transport {
 public:
  explicit ReversedTransport(size_t expect) : expect_(expect) {}
  ~ReversedTransport() override {
    if (worker_.joinable()) worker_.join();
  }
  void BeginBatch() override { batches_.push_back(0); }
  void EndBatch() override { batches_.push_back(-1); }
  void Submit(const TaskSpec& task) override {
    std::unique_lock<std::mutex> lock(mu_);
    submitted_.push_back(task);
    // Submissions within a batch: counted in its entry (the engine thread's).
    if (!batches_.empty() && batches_.back() >= 0) ++batches_.back();
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
      lock.unlock();
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
  // BeginBatch: a new entry counting its submissions; EndBatch: -1.
  std::vector<int> batches_;
  std::vector<ModelRef> bases_;  // of completed tasks, in completion order
  std::vector<TaskSpec> submitted() {
    std::lock_guard<std::mutex> lock(mu_);
    return submitted_;
  }

 private:
  void Complete(const TaskSpec& t) {
    TaskResult r;
    r.id = t.id;
    r.client = t.client;
    r.base = t.base;
    bases_.push_back(t.base);
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
  absl::Status Start(const FleetView& fleet, ModelBank& models) override {
    start_calls_++;
    EXPECT_EQ(fleet.now(), 0.0);
    EXPECT_EQ(models.global().size(), 1u);
    return start_status_;
  }
  absl::StatusOr<std::vector<Dispatch>> Select(const FleetView& fleet, Rng&) override {
    if (!select_status_.ok()) return select_status_;
    if (started_) return std::vector<Dispatch>();
    started_ = true;
    std::vector<Dispatch> out;
    for (ClientId c : order_) {
      EXPECT_FALSE(fleet.client(c).busy);
      out.push_back(Dispatch{.client = c});
    }
    return out;
  }
  absl::Status OnTimer(const FleetView& fleet) override {
    timer_times_.push_back(fleet.now());
    return absl::OkStatus();
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
  absl::StatusOr<CommitResult> Commit(const FleetView& fleet, ModelBank& models) override {
    commit_times_.push_back(fleet.now());
    models.global()[0] += sum_;
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
  std::vector<double> timer_times_;
  absl::Status start_status_;
  absl::Status select_status_;
  int start_calls_ = 0;
  bool started_ = false;
  float sum_ = 0;
};

// Periodic checkpoints every commit, each taking `cost` on the engine's fake
// clock and nothing else moving it: how many are taken before the final one.
int PeriodicCheckpoints(absl::Duration cost) {
  CommitEachArrival alg;
  ReversedTransport transport(1);
  ModelStore store;
  ConstEvaluator eval;
  RunObserver obs;
  FakeClock clock;
  EngineConfig config = MakeConfig({1.0});
  config.max_virtual_s = 10;
  config.clock = &clock;
  config.checkpoint_every_commits = 1;
  int periodic = 0;
  config.checkpoint_sink = [&](const ckpt::EngineState& s) {
    if (!s.finished()) ++periodic;
    clock.Advance(cost);
    return absl::OkStatus();
  };
  Engine engine(config, &alg, &transport, &store, &eval, &obs);
  auto summary = engine.Run();
  EXPECT_TRUE(summary.ok()) << summary.status();
  return periodic;
}

TEST(EngineTest, CheckpointsThatCostMoreThanAShareOfTheRunAreSpacedOut) {
  EXPECT_EQ(PeriodicCheckpoints(absl::ZeroDuration()), 9);  // commits 1..9; 10 is the last
  EXPECT_EQ(PeriodicCheckpoints(absl::Seconds(1)), 1);      // no run time passes in between
}

TEST(EngineTest, DeliversInVirtualTimeOrderWhateverThePhysicalOrderAndBatchesEachSelect) {
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
  // Each Select's tasks went to the transport as one batch (BeginBatch ..
  // EndBatch), so that its workers can share them out at once.
  ASSERT_GE(transport.batches_.size(), 2u);
  EXPECT_EQ(transport.batches_[0], 4);  // the first Select's four tasks
  EXPECT_EQ(transport.batches_[1], -1);
  int submitted = 0;
  for (size_t i = 0; i < transport.batches_.size(); i += 2) {
    EXPECT_GE(transport.batches_[i], 0) << "a batch begun inside another, at " << i;
    ASSERT_LT(i + 1, transport.batches_.size()) << "a batch never ended";
    EXPECT_EQ(transport.batches_[i + 1], -1);
    submitted += transport.batches_[i];
  }
  EXPECT_EQ(static_cast<size_t>(submitted), transport.submitted().size());  // none outside
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

namespace fedsim {
namespace {

TEST(EngineTest, TimerCallbackFiresAtTheDeadline) {
  RecordingAlgorithm alg;
  alg.order_ = {0};
  alg.deadline_ = 2.5;
  ReversedTransport transport(1);
  ModelStore store;
  ConstEvaluator eval;
  RunObserver obs;
  Engine engine(MakeConfig({1.0}), &alg, &transport, &store, &eval, &obs);
  ASSERT_TRUE(engine.Run().ok());
  EXPECT_EQ(alg.start_calls_, 1);
  EXPECT_EQ(alg.timer_times_, (std::vector<double>{2.5}));
}

TEST(EngineTest, ARuleThatCannotStartStopsTheRunWithItsReason) {
  RecordingAlgorithm alg;
  alg.order_ = {0};
  alg.start_status_ = absl::FailedPreconditionError("window is zero; set delta_s");
  ReversedTransport transport(1);
  ModelStore store;
  ConstEvaluator eval;
  RunObserver obs;
  Engine engine(MakeConfig({1.0}), &alg, &transport, &store, &eval, &obs);
  auto s = engine.Run();
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_EQ(s.status().message(), "recording cannot start: window is zero; set delta_s");
  EXPECT_TRUE(transport.submitted().empty());
}

TEST(EngineTest, SelectErrorStopsTheRun) {
  RecordingAlgorithm alg;
  alg.order_ = {0};
  alg.select_status_ = absl::InvalidArgumentError("no neighbours");
  ReversedTransport transport(1);
  ModelStore store;
  ConstEvaluator eval;
  RunObserver obs;
  Engine engine(MakeConfig({1.0}), &alg, &transport, &store, &eval, &obs);
  auto s = engine.Run();
  ASSERT_FALSE(s.ok());
  EXPECT_EQ(s.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(s.status().message(), "recording failed in Select: no neighbours");
}

TEST(EngineTest, ComputeMultiplierStretchesDurations) {
  RecordingAlgorithm alg;
  alg.order_ = {0, 1};
  ReversedTransport transport(2);
  ModelStore store;
  ConstEvaluator eval;
  RunObserver obs;
  EngineConfig config = MakeConfig({1.0, 3.0});
  config.examples_per_task = {10, 10};
  config.local.mutable_sam()->set_rho(0.05);  // SAM: two passes per step
  Engine engine(std::move(config), &alg, &transport, &store, &eval, &obs);
  ASSERT_TRUE(engine.Run().ok());
  ASSERT_EQ(alg.arrivals_.size(), 2u);
  EXPECT_EQ(alg.arrivals_[0].second, 20.0);
  EXPECT_EQ(alg.arrivals_[1].second, 60.0);
  for (const TaskSpec& t : transport.submitted()) EXPECT_EQ(t.duration_s, t.due);
}

// A rule with one model per client (as decentralized rules have): it
// publishes client models, trains each client from its own, writes the
// average into the global model and reports a figure of its own.
class PerClientAlgorithm : public Algorithm {
 public:
  explicit PerClientAlgorithm(size_t n) : models_(n) {}
  std::string_view Name() const override { return "per_client"; }
  absl::Status Start(const FleetView& fleet, ModelBank& bank) override {
    for (ClientId c = 0; c < fleet.num_clients(); ++c) {
      models_[c] = std::make_shared<const std::vector<float>>(1, static_cast<float>(c));
      bank.Publish(ModelRef::OfClient(c, 0), models_[c]);
    }
    return absl::OkStatus();
  }
  absl::StatusOr<std::vector<Dispatch>> Select(const FleetView& fleet, Rng&) override {
    std::vector<Dispatch> out;
    if (round_ >= 2 || fleet.num_busy() > 0) return out;
    for (ClientId c = 0; c < fleet.num_clients(); ++c) {
      EXPECT_EQ(fleet.model(ModelRef::OfClient(c, round_)).size(), 1u);
      out.push_back(Dispatch{.client = c, .base = ModelRef::OfClient(c, round_)});
    }
    pending_ = fleet.num_clients();
    return out;
  }
  absl::Status Accept(const FleetView& fleet, ClientUpdate u) override {
    EXPECT_EQ(u.base, ModelRef::OfClient(u.client, round_));
    EXPECT_EQ(u.staleness, 0u);
    const std::span<const float> base = fleet.model(u.base);
    auto next = std::make_shared<std::vector<float>>(base.begin(), base.end());
    (*next)[0] += u.delta[0];
    models_[u.client] = next;
    --pending_;
    return absl::OkStatus();
  }
  bool ReadyToCommit(const FleetView&) const override { return pending_ == 0 && round_ < 2; }
  absl::StatusOr<CommitResult> Commit(const FleetView& fleet, ModelBank& bank) override {
    ++round_;
    float sum = 0;
    for (ClientId c = 0; c < fleet.num_clients(); ++c) {
      sum += (*models_[c])[0];
      bank.Publish(ModelRef::OfClient(c, round_), models_[c]);
    }
    bank.global()[0] = sum / static_cast<float>(fleet.num_clients());
    pending_ = -1;
    return CommitResult{};
  }
  std::span<const float> ClientModel(ClientId id) const override { return *models_[id]; }
  std::vector<std::string> MetricNames() const override { return {"rounds_done"}; }
  void CollectMetrics(const FleetView&, MetricValues* out) const override {
    (*out)["rounds_done"] = round_;
  }
  absl::Status SaveState(AlgorithmState*) const override { return absl::OkStatus(); }
  absl::Status LoadState(const AlgorithmState&) override { return absl::OkStatus(); }

  std::vector<std::shared_ptr<const std::vector<float>>> models_;
  int round_ = 0;
  int pending_ = -1;
};

// Accuracy = the single parameter / 10, so client samples are checkable.
class ParamEvaluator : public EvaluatorInterface {
 public:
  std::vector<std::string> ExtraMetricNames() const override { return {"extra"}; }
  MetricValues Evaluate(std::span<const float> p) override {
    return {{"test_loss", 1.0}, {"test_accuracy", p[0] / 10.0}, {"extra", 7.0}};
  }
  double Accuracy(std::span<const float> p) override { return p[0] / 10.0; }
};

TEST(EngineTest, ClientModelsTravelByRefAndAreSampledAtEvaluation) {
  PerClientAlgorithm alg(4);
  ReversedTransport transport(4);
  ModelStore store;
  ParamEvaluator eval;
  RecordingObserver obs;
  EngineConfig config = MakeConfig({1.0, 1.0, 1.0, 1.0});
  config.max_virtual_s = 0;
  config.max_commits = 2;
  config.eval_every_commits = 1;
  config.eval_client_sample = 3;
  Engine engine(std::move(config), &alg, &transport, &store, &eval, &obs);
  auto s = engine.Run();
  ASSERT_TRUE(s.ok()) << s.status();
  // Every task trained from its client's own model of the round.
  std::vector<TaskSpec> tasks = transport.submitted();
  ASSERT_EQ(tasks.size(), 8u);
  for (size_t i = 0; i < tasks.size(); ++i) {
    EXPECT_EQ(tasks[i].base, ModelRef::OfClient(tasks[i].client, i < 4 ? 0 : 1));
  }
  // Columns: base, the evaluator's, the client sample's, the rule's.
  std::vector<std::string> want = BaseMetricColumns();
  for (const char* c : {"extra", "client_accuracy_mean", "client_accuracy_min",
                        "client_accuracy_max", "rounds_done"}) {
    want.push_back(c);
  }
  EXPECT_EQ(obs.columns_, want);
  ASSERT_EQ(obs.rows_.size(), 3u);  // initial + 2 commits
  // Client c starts at c and the transport's delta is c + 1 per round, so
  // after two rounds the models are 3c + 2 = {2, 5, 8, 11}; the sample holds
  // 3 of the 4 clients.
  const MetricsRow& last = obs.rows_.back();
  EXPECT_EQ(last.Get("rounds_done"), 2.0);
  EXPECT_EQ(last.Get("extra"), 7.0);
  const double lo = last.Get("client_accuracy_min"), hi = last.Get("client_accuracy_max");
  EXPECT_LE(lo, last.Get("client_accuracy_mean"));
  EXPECT_GE(hi, last.Get("client_accuracy_mean"));
  EXPECT_LT(lo, hi);
  // The global model is the average of the client models: 26 / 4 = 6.5.
  EXPECT_EQ(engine.global_model()[0], 6.5f);
  EXPECT_EQ(last.Get("test_accuracy"), 0.65);
  // Round-0 client models are no longer kept once round 1's are published
  // and no task needs them.
  for (ClientId c = 0; c < 4; ++c) {
    EXPECT_EQ(store.Get(ModelRef::OfClient(c, 0)), nullptr) << c;
    EXPECT_NE(store.Get(ModelRef::OfClient(c, 2)), nullptr) << c;
  }
}

TEST(EngineTest, DispatchOnAnUnpublishedModelIsAnError) {
  class Bad : public PerClientAlgorithm {
   public:
    Bad() : PerClientAlgorithm(1) {}
    absl::StatusOr<std::vector<Dispatch>> Select(const FleetView&, Rng&) override {
      return std::vector<Dispatch>{Dispatch{.client = 0, .base = ModelRef::OfClient(0, 9)}};
    }
  } alg;
  ReversedTransport transport(1);
  ModelStore store;
  ConstEvaluator eval;
  RunObserver obs;
  Engine engine(MakeConfig({1.0}), &alg, &transport, &store, &eval, &obs);
  auto s = engine.Run();
  ASSERT_FALSE(s.ok());
  EXPECT_NE(s.status().message().find("client0@9, which was never published"),
            absl::string_view::npos)
      << s.status();
}

// config/memory.h's kBytesPerClient, which validation multiplies by
// num_clients, counts what the engine and the run's setup keep per client:
// a field added to these types must be counted there too.
TEST(EngineTest, MemoryEstimatePerClientCoversTheEnginesTypes) {
  constexpr uint64_t kKept = sizeof(ClientInfo)           // the engine's
                             + 2 * sizeof(DeviceProfile)  // run setup's + engine's
                             + 2 * sizeof(uint64_t)       // examples_per_task, twice
                             + sizeof(uint64_t)           // dispatches
                             + sizeof(uint32_t) + 1       // the idle set
                             + sizeof(uint32_t)           // RunData::client_rows
                             + sizeof(double);            // participation p_i
  EXPECT_LE(kKept, kBytesPerClient);
  EXPECT_GT(kKept + 16, kBytesPerClient) << "kBytesPerClient overstates; update it";
}

}  // namespace
}  // namespace fedsim
