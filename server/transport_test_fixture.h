// The fixture shared by the GrpcTransport tests: a server on a FakeClock,
// clients through the real stub, and task/result/model makers.
#ifndef FEDSIM_SERVER_TRANSPORT_TEST_FIXTURE_H_
#define FEDSIM_SERVER_TRANSPORT_TEST_FIXTURE_H_

#include <memory>
#include <vector>

#include "absl/time/clock.h"
#include "absl/time/time.h"
#include "core/clock.h"
#include "gtest/gtest.h"
#include "rpc/aggregator_client.h"
#include "server/grpc_transport.h"

namespace fedsim {
namespace testing_internal {

inline const ModelRef kBase = ModelRef::Global(7);

inline ModelStore::Params MakeModel(size_t n, float scale) {
  auto params = std::make_shared<std::vector<float>>(n);
  for (size_t i = 0; i < n; ++i) (*params)[i] = scale * static_cast<float>(i % 9973) - 3.5f;
  return params;
}

inline TaskSpec MakeTask(TaskId id, ClientId client = 3) {
  TaskSpec spec;
  spec.id = id;
  spec.client = client;
  spec.base = kBase;
  spec.seed = 1000 + id;
  spec.local.set_epochs(2);
  spec.local.set_lr(0.05);
  spec.duration_s = 1.5;
  return spec;
}

inline TaskResult MakeResult(const TaskSpec& spec, size_t n, float value = 0.25f) {
  TaskResult result;
  result.id = spec.id;
  result.client = spec.client;
  result.base = spec.base;
  result.num_examples = 60;
  result.delta.assign(n, value);
  for (size_t i = 0; i < n; i += 7) result.delta[i] = -value * static_cast<float>(i % 13);
  result.metrics["train_loss"] = 0.5;
  return result;
}

// Every test runs the server on a FakeClock: timeouts, long polls and
// heartbeats happen exactly when a test advances the clock past them.
class TransportTest : public ::testing::Test {
 protected:
  void TearDown() override {
    if (transport_ == nullptr) return;
    // Test workers never hear run_finished: let the shutdown grace pass.
    transport_->Shutdown();
    clock_.Advance(absl::Seconds(1));
    transport_.reset();
  }

  void Start(size_t num_params, GrpcServerOptions options = {}) {
    num_params_ = num_params;
    options.shutdown_grace_s = 0.1;
    options.clock = &clock_;
    // n_i = 60 for every client the tests use (MakeResult's count), unless
    // a test gives its own table.
    if (options.client_examples.empty()) options.client_examples.assign(16, 60);
    store_.Put(kBase, MakeModel(num_params, 0.001f));
    auto transport = StartGrpcTransport(options, "name: \"t\"", num_params, &store_);
    ASSERT_TRUE(transport.ok()) << transport.status();
    transport_ = std::move(transport).value();
    ASSERT_GT(transport_->port(), 0);
  }

  std::unique_ptr<AggregatorClient> NewClient() {
    return std::make_unique<AggregatorClient>(NewWireChannel(transport_->address()));
  }

  WorkerSession RegisterWorker(AggregatorClient& client) {
    auto response = client.Register("test", 2);
    EXPECT_TRUE(response.ok()) << response.status();
    return response.ok() ? WorkerSession::Of(*response) : WorkerSession{};
  }

  // A PushUpdate stream written by hand: `chunks` as they are, under the
  // metadata of `worker` and `task`.
  grpc::Status PushRaw(const WorkerSession& worker, TaskId task,
                       const std::vector<wire::UpdateChunk>& chunks) {
    auto stub = wire::Aggregator::NewStub(NewWireChannel(transport_->address()));
    grpc::ClientContext context;
    AddPushMetadata(&context, worker, task);
    wire::PushUpdateResponse response;
    auto writer = stub->PushUpdate(&context, &response);
    for (const wire::UpdateChunk& chunk : chunks) writer->Write(chunk);
    writer->WritesDone();
    return writer->Finish();
  }

  // Threads blocked in a timed wait on the clock: the reaper (whenever a
  // worker is registered) plus `others`. Parked long polls hold no thread:
  // the poll timer counts as one while at least one poll is parked.
  void WaitForTimedWaiters(int others) { ASSERT_TRUE(clock_.BlockUntilTimedWaiters(1 + others)); }

  // Waits in real time, at most `bound`, until `n` long polls are parked
  // (gRPC parks and cancels them on its own threads, not on the fake
  // clock); whether they are.
  bool AwaitPollsParked(uint64_t n, absl::Duration bound = absl::Seconds(10)) {
    const absl::Time end = absl::Now() + bound;
    while (transport_->stats().polls_parked != n && absl::Now() < end) {
      absl::SleepFor(absl::Milliseconds(1));
    }
    return transport_->stats().polls_parked == n;
  }

  FakeClock clock_;
  size_t num_params_ = 0;
  ModelStore store_;
  std::unique_ptr<GrpcTransport> transport_;
};

}  // namespace testing_internal
}  // namespace fedsim

#endif  // FEDSIM_SERVER_TRANSPORT_TEST_FIXTURE_H_
