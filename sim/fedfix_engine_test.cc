// FedFix's windows through the real engine on Fraboni et al.'s F-X fleets
// (issue 16): a client whose task takes exactly k windows must take part in
// every k-th window. Durations and window boundaries are both computed in
// floating point (dispatch time + duration vs origin + (n+1) Delta), so
// without the engine's tie rule (sim/event_source.h) such a client would
// sometimes miss its window by one ulp and wait a whole extra one.
#include <cmath>
#include <map>
#include <memory>
#include <vector>

#include "algorithms/rules.h"
#include "google/protobuf/text_format.h"
#include "gtest/gtest.h"
#include "sim/distribution.h"
#include "sim/engine.h"

namespace fedsim {
namespace {

// Every task returns a zero delta at once.
class ZeroTransport : public Transport {
 public:
  void Submit(const TaskSpec& task) override { pending_[task.id] = task; }
  absl::StatusOr<TaskResult> Await(TaskId id) override {
    const TaskSpec& t = pending_.at(id);
    TaskResult r;
    r.id = id;
    r.client = t.client;
    r.base = t.base;
    r.num_examples = 1;
    r.delta = {0.0f};
    pending_.erase(id);
    return r;
  }
  absl::StatusOr<std::optional<TaskResult>> AwaitAny(absl::Time) override {
    return absl::UnimplementedError("virtual clock only");
  }
  void Cancel(TaskId id) override { pending_.erase(id); }
  void Shutdown() override {}

 private:
  std::map<TaskId, TaskSpec> pending_;
};

class NullEvaluator : public EvaluatorInterface {
 public:
  MetricValues Evaluate(std::span<const float>) override {
    return {{"test_loss", 0}, {"test_accuracy", 0}};
  }
};

// The windows (commit versions) in which each client was aggregated.
class WindowRecorder : public RunObserver {
 public:
  void OnCommit(VirtualTime, Version new_version, const CommitResult& result) override {
    for (const AppliedUpdate& u : result.applied) windows[u.client].push_back(new_version);
  }
  std::map<ClientId, std::vector<Version>> windows;
};

struct Periods {
  std::vector<double> measured;  // windows between two participations, on average
  std::vector<double> expected;  // ceil(tau_i / Delta)
};

// N clients with Fraboni's durations tau_i = 1 - i (X/100) / (N - 1): one task
// is 640 examples at base 1/640 s each, as in scenarios/fraboni_f80.textproto,
// so the durations take the same floating-point path as in a real run.
Periods RunFleet(uint32_t num_clients, double x_percent, double delta_fraction, double horizon) {
  config::Distribution linear;
  linear.mutable_linear()->set_base(0.0015625);
  linear.mutable_linear()->set_x_percent(x_percent);
  EngineConfig c;
  c.seed = 1;
  for (uint32_t i = 0; i < num_clients; ++i) {
    ClientInfo info;
    info.num_examples = 1;
    info.importance = 1.0 / num_clients;
    c.clients.push_back(info);
    DeviceProfile p;
    p.seconds_per_example =
        DrawFromDistribution(linear, c.seed, "device.seconds_per_example", i, num_clients, 0);
    c.profiles.push_back(p);
    c.examples_per_task.push_back(640);
  }
  c.initial_params = {0.0f};
  c.max_virtual_s = horizon;
  c.eval_every_commits = 0;

  config::Algorithm a;
  a.mutable_fedfix()->set_delta_fraction(delta_fraction);
  absl::StatusOr<std::unique_ptr<Algorithm>> rule =
      NewFedFix(a, AlgorithmContext{.num_clients = num_clients, .num_params = 1});
  EXPECT_TRUE(rule.ok()) << rule.status();
  if (!rule.ok()) return {};
  ZeroTransport transport;
  ModelStore store;
  NullEvaluator eval;
  WindowRecorder recorder;
  Engine engine(c, rule->get(), &transport, &store, &eval, &recorder);
  absl::StatusOr<RunSummary> s = engine.Run();
  EXPECT_TRUE(s.ok()) << s.status();

  Periods out;
  const double delta = delta_fraction * 1.0;  // the slowest client's task is 1 s
  for (uint32_t i = 0; i < num_clients; ++i) {
    const std::vector<Version>& w = recorder.windows[i];
    EXPECT_GE(w.size(), 3u) << "client " << i;
    if (w.size() < 2) return {};
    out.measured.push_back(static_cast<double>(w.back() - w.front()) /
                           static_cast<double>(w.size() - 1));
    const double tau = 640 * c.profiles[i].seconds_per_example;
    out.expected.push_back(std::max(1.0, std::ceil(tau / delta - 1e-9)));
  }
  return out;
}

// The first worked case: N = 20, F-80, Delta = 0.2. Client 19's task
// takes 0.2 = Delta, so it must be aggregated in every window (it was every
// 1.095 windows when its arrival landed one ulp after some boundaries).
TEST(FedFixEngineTest, F80Delta02EveryClientKeepsItsPeriod) {
  Periods p = RunFleet(20, 80, 0.2, 200);
  ASSERT_EQ(p.measured.size(), 20u);
  EXPECT_EQ(p.expected[19], 1.0);
  EXPECT_EQ(p.expected[0], 5.0);
  for (size_t i = 0; i < 20; ++i) EXPECT_EQ(p.measured[i], p.expected[i]) << "client " << i;
}

// The second: F-20, Delta = 0.8, where client 19's task is 0.8 = Delta (it
// was every 1.284 windows).
TEST(FedFixEngineTest, F20Delta08EveryClientKeepsItsPeriod) {
  Periods p = RunFleet(20, 20, 0.8, 400);
  ASSERT_EQ(p.measured.size(), 20u);
  EXPECT_EQ(p.expected[19], 1.0);
  EXPECT_EQ(p.expected[0], 2.0);
  for (size_t i = 0; i < 20; ++i) EXPECT_EQ(p.measured[i], p.expected[i]) << "client " << i;
}

// The other F-X fleets at the paper's windows, N = 20 and 50.
TEST(FedFixEngineTest, PaperGridKeepsEveryPeriod) {
  for (uint32_t n : {20u, 50u}) {
    for (double x : {20.0, 40.0, 60.0, 80.0}) {
      for (double d : {0.2, 0.5, 0.8}) {
        Periods p = RunFleet(n, x, d, 100);
        ASSERT_EQ(p.measured.size(), n);
        for (size_t i = 0; i < n; ++i) {
          EXPECT_EQ(p.measured[i], p.expected[i])
              << "N " << n << " F-" << x << " Delta " << d << " client " << i;
        }
      }
    }
  }
}

}  // namespace
}  // namespace fedsim
