#include "server/grpc_transport.h"

#include <atomic>
#include <cmath>
#include <limits>
#include <thread>

#include "absl/time/clock.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "proto/fedsim.grpc.pb.h"
#include "server/aggregator_client.h"
#include "server/wire.h"

namespace fedsim {
namespace {

using ::testing::HasSubstr;

constexpr Version kBase = 7;

ModelStore::Params MakeModel(size_t n, float scale) {
  auto params = std::make_shared<std::vector<float>>(n);
  for (size_t i = 0; i < n; ++i) (*params)[i] = scale * static_cast<float>(i % 9973) - 3.5f;
  return params;
}

TaskSpec MakeTask(TaskId id, ClientId client = 3) {
  TaskSpec spec;
  spec.id = id;
  spec.client = client;
  spec.base_version = kBase;
  spec.seed = 1000 + id;
  spec.local.epochs = 2;
  spec.local.lr = 0.05;
  spec.duration_s = 1.5;
  return spec;
}

TaskResult MakeResult(const TaskSpec& spec, size_t n, float value = 0.25f) {
  TaskResult result;
  result.id = spec.id;
  result.client = spec.client;
  result.base_version = spec.base_version;
  result.num_examples = 60;
  result.delta.assign(n, value);
  for (size_t i = 0; i < n; i += 7) result.delta[i] = -value * static_cast<float>(i % 13);
  result.metrics["train_loss"] = 0.5;
  return result;
}

class TransportTest : public ::testing::Test {
 protected:
  void Start(size_t num_params, GrpcServerOptions options = {}) {
    num_params_ = num_params;
    // Test workers never hear run_finished; do not wait for them at teardown.
    options.shutdown_grace_s = 0.1;
    store_.Put(kBase, MakeModel(num_params, 0.001f));
    auto transport = StartGrpcTransport(options, "name: \"t\"", num_params, &store_);
    ASSERT_TRUE(transport.ok()) << transport.status();
    transport_ = std::move(transport).value();
    ASSERT_GT(transport_->port(), 0);
  }

  std::unique_ptr<AggregatorClient> NewClient() {
    return std::make_unique<AggregatorClient>(NewWireChannel(transport_->address()));
  }

  uint64_t RegisterWorker(AggregatorClient& client) {
    auto response = client.Register("test", 2);
    EXPECT_TRUE(response.ok()) << response.status();
    return response.ok() ? response->worker_id() : 0;
  }

  size_t num_params_ = 0;
  ModelStore store_;
  std::unique_ptr<GrpcTransport> transport_;
};

TEST_F(TransportTest, RegisterHandsOutScenarioAndRefusesOtherProtocolVersions) {
  Start(10);
  auto client = NewClient();
  auto response = client->Register("w", 4);
  ASSERT_TRUE(response.ok()) << response.status();
  EXPECT_EQ(response->scenario_text(), "name: \"t\"");
  EXPECT_EQ(response->num_params(), 10u);
  EXPECT_DOUBLE_EQ(response->heartbeat_interval_s(), 0.5);
  auto second = client->Register("w2", 4);
  ASSERT_TRUE(second.ok());
  EXPECT_NE(second->worker_id(), response->worker_id());

  auto old = client->Register("w", 4, /*protocol_version=*/99);
  EXPECT_EQ(old.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(old.status().message(), HasSubstr("protocol version 99"));
}

TEST_F(TransportTest, FiftyMegabyteModelRoundTripsThroughFetchAndPush) {
  const size_t n = 50'000'000 / sizeof(float);
  Start(n);
  auto client = NewClient();
  uint64_t worker = RegisterWorker(*client);
  TaskSpec spec = MakeTask(1);
  transport_->Submit(spec);

  auto lease = client->GetTask(worker, 4, 1.0);
  ASSERT_TRUE(lease.ok()) << lease.status();
  ASSERT_EQ(lease->tasks_size(), 1);
  TaskSpec got = TaskFromWire(lease->tasks(0));
  EXPECT_EQ(got.id, spec.id);
  EXPECT_EQ(got.client, spec.client);
  EXPECT_EQ(got.base_version, kBase);
  EXPECT_EQ(got.seed, spec.seed);
  EXPECT_EQ(got.local.epochs, 2u);
  EXPECT_EQ(got.local.lr, 0.05);
  EXPECT_EQ(got.duration_s, 1.5);

  auto model = client->FetchModel(worker, kBase);
  ASSERT_TRUE(model.ok()) << model.status();
  ASSERT_EQ(model->size(), n);
  const std::vector<float>& expected = *store_.Get(kBase);
  size_t mismatches = 0;
  for (size_t i = 0; i < n; ++i) mismatches += ((*model)[i] != expected[i]);
  EXPECT_EQ(mismatches, 0u);

  TaskResult result = MakeResult(spec, n);
  for (size_t i = 0; i < n; ++i) result.delta[i] = static_cast<float>(i) * 1e-7f;
  auto pushed = client->PushUpdate(worker, result);
  ASSERT_TRUE(pushed.ok()) << pushed.status();
  EXPECT_FALSE(*pushed);

  auto arrived = transport_->Await(1);
  ASSERT_TRUE(arrived.ok()) << arrived.status();
  ASSERT_EQ(arrived->delta.size(), n);
  mismatches = 0;
  for (size_t i = 0; i < n; ++i) mismatches += (arrived->delta[i] != result.delta[i]);
  EXPECT_EQ(mismatches, 0u);
  EXPECT_EQ(arrived->num_examples, 60u);
  EXPECT_EQ(arrived->metrics.at("train_loss"), 0.5);

  GrpcTransportStats stats = transport_->stats();
  EXPECT_EQ(stats.bytes_sent, n * sizeof(float));
  EXPECT_EQ(stats.bytes_received, n * sizeof(float));
  EXPECT_EQ(stats.updates_accepted, 1u);
}

TEST_F(TransportTest, InProcessChannelServesTheSameProtocol) {
  Start(3'000'000);  // 12 MB: several chunks
  AggregatorClient client(transport_->InProcessChannel());
  uint64_t worker = RegisterWorker(client);
  auto model = client.FetchModel(worker, kBase);
  ASSERT_TRUE(model.ok()) << model.status();
  EXPECT_EQ(*model, *store_.Get(kBase));
}

TEST_F(TransportTest, FetchOfAVersionNotKeptIsNotFound) {
  Start(10);
  auto client = NewClient();
  auto model = client->FetchModel(RegisterWorker(*client), kBase + 1);
  EXPECT_EQ(model.status().code(), absl::StatusCode::kNotFound);
}

// Every bad update is refused with its own code and changes nothing; a good
// one afterwards goes through.
TEST_F(TransportTest, BadUpdatesAreRejectedAndTheTransportKeepsWorking) {
  const size_t n = 1000;
  Start(n);
  auto client = NewClient();
  uint64_t a = RegisterWorker(*client);
  uint64_t b = RegisterWorker(*client);
  transport_->Submit(MakeTask(1));
  transport_->Submit(MakeTask(2));
  auto lease = client->GetTask(a, 2, 1.0);
  ASSERT_TRUE(lease.ok());
  ASSERT_EQ(lease->tasks_size(), 2);
  const TaskResult good = MakeResult(MakeTask(1), n);

  TaskResult wrong_size = good;
  wrong_size.delta.resize(n - 1);
  auto status = client->PushUpdate(a, wrong_size).status();
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(status.message(), HasSubstr("expected 1000 floats, got 999"));

  TaskResult nan = good;
  nan.delta[17] = std::numeric_limits<float>::quiet_NaN();
  status = client->PushUpdate(a, nan).status();
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(status.message(), HasSubstr("index 17"));

  TaskResult inf = good;
  inf.delta[999] = std::numeric_limits<float>::infinity();
  status = client->PushUpdate(a, inf).status();
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(status.message(), HasSubstr("index 999"));

  TaskResult unknown = good;
  unknown.id = 99;
  status = client->PushUpdate(a, unknown).status();
  EXPECT_EQ(status.code(), absl::StatusCode::kNotFound);

  status = client->PushUpdate(b, good).status();
  EXPECT_EQ(status.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(status.message(), HasSubstr("not leased to worker"));

  TaskResult wrong_base = good;
  wrong_base.base_version = kBase + 1;
  status = client->PushUpdate(a, wrong_base).status();
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(status.message(), HasSubstr("base version"));

  TaskResult wrong_client = good;
  wrong_client.client = 4;
  EXPECT_EQ(client->PushUpdate(a, wrong_client).status().code(),
            absl::StatusCode::kInvalidArgument);

  {  // Chunks with a gap, written by hand.
    auto stub = wire::Aggregator::NewStub(NewWireChannel(transport_->address()));
    grpc::ClientContext context;
    wire::PushUpdateResponse response;
    auto writer = stub->PushUpdate(&context, &response);
    wire::UpdateChunk chunk;
    wire::UpdateHeader* header = chunk.mutable_header();
    header->set_worker_id(a);
    header->set_task_id(1);
    header->set_client_id(3);
    header->set_base_version(kBase);
    header->set_num_params(n);
    chunk.set_offset(0);
    chunk.set_data(std::string(400, '\0'));
    writer->Write(chunk);
    chunk.clear_header();
    chunk.set_offset(200);  // expected 100
    chunk.set_data(std::string(3600, '\0'));
    writer->Write(chunk);
    writer->WritesDone();
    grpc::Status s = writer->Finish();
    EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
    EXPECT_THAT(s.error_message(), HasSubstr("expected offset 100, got 200"));
  }
  {  // No header at all.
    auto stub = wire::Aggregator::NewStub(NewWireChannel(transport_->address()));
    grpc::ClientContext context;
    wire::PushUpdateResponse response;
    auto writer = stub->PushUpdate(&context, &response);
    wire::UpdateChunk chunk;
    chunk.set_data(std::string(4000, '\0'));
    writer->Write(chunk);
    writer->WritesDone();
    EXPECT_EQ(writer->Finish().error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  }

  GrpcTransportStats stats = transport_->stats();
  EXPECT_EQ(stats.updates_accepted, 0u);
  EXPECT_EQ(stats.rejected, 9u);

  // Nothing changed: the good update is accepted, once.
  auto pushed = client->PushUpdate(a, good);
  ASSERT_TRUE(pushed.ok()) << pushed.status();
  EXPECT_FALSE(*pushed);
  auto resent = client->PushUpdate(a, good);
  ASSERT_TRUE(resent.ok()) << resent.status();
  EXPECT_TRUE(*resent);
  TaskResult different = good;
  different.delta[5] += 1.0f;
  EXPECT_EQ(client->PushUpdate(a, different).status().code(), absl::StatusCode::kAlreadyExists);
  TaskResult other_metrics = good;
  other_metrics.metrics["train_loss"] = 0.75;
  EXPECT_EQ(client->PushUpdate(a, other_metrics).status().code(),
            absl::StatusCode::kAlreadyExists);

  auto arrived = transport_->Await(1);
  ASSERT_TRUE(arrived.ok()) << arrived.status();
  EXPECT_EQ(arrived->delta, good.delta);

  // The second task still goes through.
  TaskResult second = MakeResult(MakeTask(2), n, 0.5f);
  ASSERT_TRUE(client->PushUpdate(a, second).ok());
  auto any = transport_->AwaitAny(absl::Now() + absl::Seconds(5));
  ASSERT_TRUE(any.ok()) << any.status();
  ASSERT_TRUE(any->has_value());
  EXPECT_EQ((*any)->id, 2u);

  stats = transport_->stats();
  EXPECT_EQ(stats.updates_accepted, 2u);
  EXPECT_EQ(stats.duplicates, 1u);
}

TEST_F(TransportTest, LeasesAreFifoAndBoundedByMaxTasks) {
  Start(10);
  auto client = NewClient();
  uint64_t w = RegisterWorker(*client);
  for (TaskId id = 10; id < 15; ++id) transport_->Submit(MakeTask(id));
  auto first = client->GetTask(w, 2, 0);
  ASSERT_TRUE(first.ok());
  ASSERT_EQ(first->tasks_size(), 2);
  EXPECT_EQ(first->tasks(0).task_id(), 10u);
  EXPECT_EQ(first->tasks(1).task_id(), 11u);
  auto rest = client->GetTask(w, 10, 0);
  ASSERT_TRUE(rest.ok());
  ASSERT_EQ(rest->tasks_size(), 3);
  EXPECT_EQ(rest->tasks(2).task_id(), 14u);
}

TEST_F(TransportTest, LongPollWakesWhenATaskIsSubmitted) {
  Start(10);
  auto client = NewClient();
  uint64_t w = RegisterWorker(*client);
  std::thread submitter([&] {
    absl::SleepFor(absl::Milliseconds(100));
    transport_->Submit(MakeTask(1));
  });
  absl::Time start = absl::Now();
  auto lease = client->GetTask(w, 1, 5.0);
  submitter.join();
  ASSERT_TRUE(lease.ok());
  EXPECT_EQ(lease->tasks_size(), 1);
  EXPECT_LT(absl::Now() - start, absl::Seconds(4));
  // An empty poll returns after its wait with no tasks.
  auto empty = client->GetTask(w, 1, 0.05);
  ASSERT_TRUE(empty.ok());
  EXPECT_EQ(empty->tasks_size(), 0);
  EXPECT_FALSE(empty->run_finished());
}

// A worker that leased a task and went silent: after the heartbeat timeout
// the task goes to the front of the queue, a second worker gets it, and the
// engine's Await gets the result.
TEST_F(TransportTest, SilentWorkersTasksAreReleasedToAnotherWorker) {
  GrpcServerOptions options;
  options.heartbeat_interval_s = 0.05;
  options.heartbeat_timeout_s = 0.4;
  const size_t n = 100;
  Start(n, options);
  auto client = NewClient();
  uint64_t silent = RegisterWorker(*client);
  uint64_t alive = RegisterWorker(*client);
  std::atomic<bool> stop{false};
  std::thread heartbeat([&] {
    while (!stop) {
      EXPECT_TRUE(client->Heartbeat(alive, {}).ok());
      absl::SleepFor(absl::Milliseconds(50));
    }
  });
  transport_->Submit(MakeTask(1));
  transport_->Submit(MakeTask(2));
  auto lease = client->GetTask(silent, 1, 0);
  ASSERT_TRUE(lease.ok());
  ASSERT_EQ(lease->tasks_size(), 1);
  ASSERT_EQ(lease->tasks(0).task_id(), 1u);
  // The live worker takes task 2, then waits; task 1 comes back to it.
  auto second = client->GetTask(alive, 1, 0);
  ASSERT_TRUE(second.ok());
  ASSERT_EQ(second->tasks_size(), 1);
  EXPECT_EQ(second->tasks(0).task_id(), 2u);
  auto released = client->GetTask(alive, 1, 5.0);
  ASSERT_TRUE(released.ok()) << released.status();
  ASSERT_EQ(released->tasks_size(), 1);
  EXPECT_EQ(released->tasks(0).task_id(), 1u);
  EXPECT_EQ(transport_->stats().tasks_requeued, 1u);
  EXPECT_EQ(transport_->stats().workers_dropped, 1u);

  auto hb = client->Heartbeat(silent, {1});
  ASSERT_TRUE(hb.ok());
  EXPECT_TRUE(hb->unknown_worker());
  EXPECT_EQ(client->GetTask(silent, 1, 0).status().code(),
            absl::StatusCode::kFailedPrecondition);

  TaskResult result = MakeResult(MakeTask(1), n);
  auto pushed = client->PushUpdate(alive, result);
  ASSERT_TRUE(pushed.ok()) << pushed.status();
  auto arrived = transport_->Await(1);
  ASSERT_TRUE(arrived.ok()) << arrived.status();
  EXPECT_EQ(arrived->delta, result.delta);
  // The first worker's late (identical) result is a duplicate, counted once.
  auto late = client->PushUpdate(silent, result);
  ASSERT_TRUE(late.ok()) << late.status();
  EXPECT_TRUE(*late);
  stop = true;
  heartbeat.join();
}

TEST_F(TransportTest, ResultFromTheTimedOutWorkerIsTakenIfItComesFirst) {
  GrpcServerOptions options;
  options.heartbeat_interval_s = 0.02;
  options.heartbeat_timeout_s = 0.2;
  Start(10, options);
  auto client = NewClient();
  uint64_t slow = RegisterWorker(*client);
  transport_->Submit(MakeTask(1));
  ASSERT_EQ(client->GetTask(slow, 1, 0)->tasks_size(), 1);
  absl::SleepFor(absl::Milliseconds(500));  // dropped; task 1 back in the queue
  EXPECT_EQ(transport_->stats().tasks_requeued, 1u);
  ASSERT_TRUE(client->PushUpdate(slow, MakeResult(MakeTask(1), 10)).ok());
  ASSERT_TRUE(transport_->Await(1).ok());
  // It left the queue: a new worker finds nothing to do.
  uint64_t fresh = RegisterWorker(*client);
  EXPECT_EQ(client->GetTask(fresh, 1, 0)->tasks_size(), 0);
}

TEST_F(TransportTest, CancelRemovesPendingAndDiscardsLeasedResults) {
  Start(10);
  auto client = NewClient();
  uint64_t w = RegisterWorker(*client);
  transport_->Submit(MakeTask(1));
  transport_->Submit(MakeTask(2));
  transport_->Submit(MakeTask(3));
  transport_->Cancel(1);
  auto lease = client->GetTask(w, 1, 0);
  ASSERT_EQ(lease->tasks_size(), 1);
  EXPECT_EQ(lease->tasks(0).task_id(), 2u);
  transport_->Cancel(2);
  auto pushed = client->PushUpdate(w, MakeResult(MakeTask(2), 10));
  EXPECT_TRUE(pushed.ok()) << pushed.status();
  EXPECT_EQ(transport_->stats().discarded, 1u);
  EXPECT_EQ(transport_->Await(2).status().code(), absl::StatusCode::kFailedPrecondition);
  // Task 3 is unaffected.
  ASSERT_EQ(client->GetTask(w, 5, 0)->tasks_size(), 1);
  ASSERT_TRUE(client->PushUpdate(w, MakeResult(MakeTask(3), 10)).ok());
  auto any = transport_->AwaitAny(absl::Now() + absl::Seconds(5));
  ASSERT_TRUE(any.ok());
  ASSERT_TRUE(any->has_value());
  EXPECT_EQ((*any)->id, 3u);
}

TEST_F(TransportTest, AwaitAnyTimesOutWithNothing) {
  Start(10);
  auto client = NewClient();
  RegisterWorker(*client);
  auto any = transport_->AwaitAny(absl::Now() + absl::Milliseconds(50));
  ASSERT_TRUE(any.ok());
  EXPECT_FALSE(any->has_value());
}

TEST_F(TransportTest, AwaitSaysNoWorkerIsConnected) {
  GrpcServerOptions options;
  options.no_worker_timeout_s = 0.2;
  Start(10, options);
  transport_->Submit(MakeTask(1));
  auto result = transport_->Await(1);
  EXPECT_EQ(result.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(result.status().message(), HasSubstr("no worker is connected"));
  EXPECT_EQ(transport_->Await(42).status().code(), absl::StatusCode::kNotFound);
}

TEST_F(TransportTest, ShutdownWakesEveryoneAndTellsWorkers) {
  Start(10);
  auto client = NewClient();
  uint64_t w = RegisterWorker(*client);
  transport_->Submit(MakeTask(1));
  ASSERT_EQ(client->GetTask(w, 1, 0)->tasks_size(), 1);
  absl::StatusOr<wire::GetTaskResponse> poll;
  absl::StatusOr<TaskResult> awaited;
  std::thread poller([&] { poll = client->GetTask(w, 1, 8.0); });
  std::thread waiter([&] { awaited = transport_->Await(1); });
  absl::SleepFor(absl::Milliseconds(100));
  absl::Time start = absl::Now();
  transport_->Shutdown();
  transport_->Shutdown();  // idempotent
  poller.join();
  waiter.join();
  EXPECT_LT(absl::Now() - start, absl::Seconds(2));
  ASSERT_TRUE(poll.ok()) << poll.status();
  EXPECT_TRUE(poll->run_finished());
  EXPECT_EQ(awaited.status().code(), absl::StatusCode::kCancelled);
  // Every worker has heard it, so the server stops without the full grace.
  start = absl::Now();
  transport_.reset();
  EXPECT_LT(absl::Now() - start, absl::Seconds(1.5));
}

TEST_F(TransportTest, HeartbeatSaysRunFinishedAfterShutdown) {
  Start(10);
  auto client = NewClient();
  uint64_t w = RegisterWorker(*client);
  auto hb = client->Heartbeat(w, {});
  ASSERT_TRUE(hb.ok());
  EXPECT_FALSE(hb->run_finished());
  transport_->Shutdown();
  hb = client->Heartbeat(w, {});
  ASSERT_TRUE(hb.ok());
  EXPECT_TRUE(hb->run_finished());
}

TEST(WireTest, FingerprintSeesEveryBit) {
  std::vector<float> delta(1001, 1.0f);
  std::map<std::string, double> metrics = {{"loss", 1.0}};
  uint64_t base = UpdateFingerprint(1, 2, 3, delta, metrics);
  EXPECT_EQ(base, UpdateFingerprint(1, 2, 3, delta, metrics));
  for (size_t i : {size_t{0}, size_t{511}, size_t{1000}}) {
    std::vector<float> changed = delta;
    changed[i] = std::nextafter(1.0f, 2.0f);
    EXPECT_NE(base, UpdateFingerprint(1, 2, 3, changed, metrics)) << i;
  }
  EXPECT_NE(base, UpdateFingerprint(1, 2, 4, delta, metrics));
  EXPECT_NE(base, UpdateFingerprint(1, 2, 3, delta, {{"loss", 2.0}}));
}

TEST(StartTest, RefusesBadOptions) {
  ModelStore store;
  GrpcServerOptions options;
  options.heartbeat_timeout_s = 0.1;  // below the interval
  EXPECT_EQ(StartGrpcTransport(options, "", 1, &store).status().code(),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(StartGrpcTransport({}, "", 1, nullptr).status().code(),
            absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace fedsim
