// The protocol: registration, transfers, validation, leases, cancel, shutdown.
#include "server/grpc_transport.h"

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <limits>
#include <optional>
#include <string>
#include <thread>

#include "absl/synchronization/notification.h"
#include "core/clock.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "proto/fedsim.grpc.pb.h"
#include "rpc/aggregator_client.h"
#include "rpc/wire.h"
#include "server/transport_test_fixture.h"

namespace fedsim {
namespace {

using ::testing::HasSubstr;
using testing_internal::kBase;
using testing_internal::MakeModel;
using testing_internal::MakeResult;
using testing_internal::MakeTask;
using testing_internal::TransportTest;

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

  WorkerIdentity old;
  old.protocol_version = 1;
  auto refused = client->Register(old);
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(refused.status().message(), HasSubstr("protocol version 1, this server speaks 3"));
}

TEST_F(TransportTest, WorkerOfAnotherBuildOrNumericModeIsRefusedNamingBothAndTheFix) {
  GrpcServerOptions options;
  options.build_id = "abc123";
  options.numeric_mode = "reproducible";
  options.numeric_fingerprint = "portable/kc=256";
  Start(10, options);
  auto client = NewClient();
  WorkerIdentity same;
  same.name = "same";
  same.build_id = "abc123";
  // Only the fingerprint of the run's mode is compared.
  same.numeric_fingerprints = {{"native", "native/avx512"}, {"reproducible", "portable/kc=256"}};
  ASSERT_TRUE(client->Register(same).ok());

  WorkerIdentity other_build = same;
  other_build.name = "other-build";
  other_build.build_id = "def456";
  absl::Status s = client->Register(other_build).status();
  EXPECT_EQ(s.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(s.message(), HasSubstr("build id 'def456' (the server's is 'abc123')"));
  EXPECT_THAT(s.message(), HasSubstr("Rebuild the worker from the same commit"));
  EXPECT_THAT(s.message(), HasSubstr("--accept_worker_mismatch"));
  EXPECT_THAT(s.message(), ::testing::Not(HasSubstr("numeric fingerprint")));

  WorkerIdentity other_numerics = same;
  other_numerics.numeric_fingerprints["reproducible"] = "portable/kc=512";
  s = client->Register(other_numerics).status();
  EXPECT_EQ(s.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(s.message(), HasSubstr("reproducible numeric fingerprint 'portable/kc=512' (the "
                                     "server's is 'portable/kc=256')"));
  EXPECT_THAT(s.message(), HasSubstr("same numeric mode"));
  EXPECT_EQ(transport_->stats().workers_registered, 1u);

  // The default identity is this build's, with no fingerprint.
  GrpcServerOptions defaults;
  EXPECT_EQ(defaults.build_id, std::string(BuildId()));
  EXPECT_EQ(defaults.numeric_fingerprint, "");
  EXPECT_EQ(defaults.numeric_mode, "native");
}

TEST_F(TransportTest, AcceptMismatchedWorkersTakesThemWithAWarning) {
  GrpcServerOptions options;
  options.build_id = "abc123";
  options.accept_mismatched_workers = true;
  char* logged = nullptr;
  size_t logged_size = 0;
  options.log = open_memstream(&logged, &logged_size);
  Start(10, options);
  auto client = NewClient();
  WorkerIdentity other;
  other.name = "old-box";
  other.build_id = "def456";
  other.numeric_fingerprints = {{"native", "native/avx2"}};
  auto reg = client->Register(other);
  ASSERT_TRUE(reg.ok()) << reg.status();
  EXPECT_EQ(transport_->stats().workers_registered, 1u);
  // It gets work like any other worker.
  transport_->Submit(MakeTask(1));
  EXPECT_EQ(client->GetTask(WorkerSession::Of(*reg), 1, 0)->tasks_size(), 1);
  TearDown();  // the log stream outlives the transport
  std::fclose(options.log);
  const std::string log(logged, logged_size);
  std::free(logged);
  EXPECT_THAT(log, HasSubstr("warning: worker old-box has build id 'def456' (the server's is "
                             "'abc123') and native numeric fingerprint 'native/avx2'"));
  EXPECT_THAT(log, HasSubstr("accepted (--accept_worker_mismatch)"));
}

TEST_F(TransportTest, FiftyMegabyteModelRoundTripsThroughFetchAndPush) {
  const size_t n = 50'000'000 / sizeof(float);
  Start(n);
  auto client = NewClient();
  WorkerSession worker = RegisterWorker(*client);
  TaskSpec spec = MakeTask(1);
  transport_->Submit(spec);

  auto lease = client->GetTask(worker, 4, 1.0);
  ASSERT_TRUE(lease.ok()) << lease.status();
  ASSERT_EQ(lease->tasks_size(), 1);
  absl::StatusOr<TaskSpec> got = TaskFromWire(lease->tasks(0));
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(got->id, spec.id);
  EXPECT_EQ(got->client, spec.client);
  EXPECT_EQ(got->base, kBase);
  EXPECT_EQ(got->seed, spec.seed);
  EXPECT_EQ(got->local.epochs(), 2u);
  EXPECT_EQ(got->local.lr(), 0.05);
  EXPECT_EQ(got->duration_s, 1.5);

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
  WorkerSession worker = RegisterWorker(client);
  auto model = client.FetchModel(worker, kBase);
  ASSERT_TRUE(model.ok()) << model.status();
  EXPECT_EQ(*model, *store_.Get(kBase));
}

TEST_F(TransportTest, FetchOfAModelNotKeptIsNotFound) {
  Start(10);
  auto client = NewClient();
  const WorkerSession w = RegisterWorker(*client);
  auto model = client->FetchModel(w, ModelRef::Global(8));
  EXPECT_EQ(model.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(model.status().message(), HasSubstr("model global@8 is not kept"));
  // Same version number, another model.
  EXPECT_EQ(client->FetchModel(w, ModelRef::OfClient(0, 7)).status().code(),
            absl::StatusCode::kNotFound);
}

TEST_F(TransportTest, ClientModelsAreServedByTheirRef) {
  Start(10);
  store_.Put(ModelRef::OfClient(4, 7), MakeModel(10, 2.0f));
  auto client = NewClient();
  const WorkerSession w = RegisterWorker(*client);
  auto own = client->FetchModel(w, ModelRef::OfClient(4, 7));
  ASSERT_TRUE(own.ok()) << own.status();
  EXPECT_EQ(*own, *store_.Get(ModelRef::OfClient(4, 7)));
  EXPECT_NE(*own, *store_.Get(kBase));
}

// Every bad update is refused with its own code and changes nothing; a good
// one afterwards goes through.
TEST_F(TransportTest, BadUpdatesAreRejectedAndTheTransportKeepsWorking) {
  const size_t n = 1000;
  Start(n);
  auto client = NewClient();
  WorkerSession a = RegisterWorker(*client);
  WorkerSession b = RegisterWorker(*client);
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
  wrong_base.base = ModelRef::OfClient(3, 7);
  status = client->PushUpdate(a, wrong_base).status();
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(status.message(), HasSubstr("base model client3@7"));

  TaskResult wrong_client = good;
  wrong_client.client = 4;
  EXPECT_EQ(client->PushUpdate(a, wrong_client).status().code(),
            absl::StatusCode::kInvalidArgument);

  {  // Chunks with a gap, written by hand.
    auto stub = wire::Aggregator::NewStub(NewWireChannel(transport_->address()));
    grpc::ClientContext context;
    AddPushMetadata(&context, a, 1);
    wire::PushUpdateResponse response;
    auto writer = stub->PushUpdate(&context, &response);
    wire::UpdateChunk chunk;
    wire::UpdateHeader* header = chunk.mutable_header();
    header->set_worker_id(a.worker_id);
    header->set_session(a.session);
    header->set_task_id(1);
    header->set_client_id(3);
    ModelRefToWire(kBase, header->mutable_base());
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
    AddPushMetadata(&context, a, 1);
    wire::PushUpdateResponse response;
    auto writer = stub->PushUpdate(&context, &response);
    wire::UpdateChunk chunk;
    chunk.set_data(std::string(4000, '\0'));
    writer->Write(chunk);
    writer->WritesDone();
    EXPECT_EQ(writer->Finish().error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  }

  {  // The header must name the worker and task of the metadata.
    auto stub = wire::Aggregator::NewStub(NewWireChannel(transport_->address()));
    grpc::ClientContext context;
    AddPushMetadata(&context, a, 2);
    wire::PushUpdateResponse response;
    auto writer = stub->PushUpdate(&context, &response);
    wire::UpdateChunk chunk;
    wire::UpdateHeader* header = chunk.mutable_header();
    header->set_worker_id(a.worker_id);
    header->set_session(a.session);
    header->set_task_id(1);
    writer->Write(chunk);
    writer->WritesDone();
    grpc::Status s = writer->Finish();
    EXPECT_EQ(s.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
    EXPECT_THAT(s.error_message(), HasSubstr("its metadata worker 1 and task 2"));
  }
  {  // No metadata: refused before anything is read.
    auto stub = wire::Aggregator::NewStub(NewWireChannel(transport_->address()));
    grpc::ClientContext context;
    wire::PushUpdateResponse response;
    auto writer = stub->PushUpdate(&context, &response);
    writer->WritesDone();
    grpc::Status s = writer->Finish();
    EXPECT_EQ(s.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
    EXPECT_THAT(s.error_message(), HasSubstr("must name its worker, session and task"));
  }

  GrpcTransportStats stats = transport_->stats();
  EXPECT_EQ(stats.updates_accepted, 0u);
  EXPECT_EQ(stats.rejected, 11u);

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
  EXPECT_EQ(client->PushUpdate(a, other_metrics).status().code(), absl::StatusCode::kAlreadyExists);

  auto arrived = transport_->Await(1);
  ASSERT_TRUE(arrived.ok()) << arrived.status();
  EXPECT_EQ(arrived->delta, good.delta);

  // The second task still goes through.
  TaskResult second = MakeResult(MakeTask(2), n, 0.5f);
  ASSERT_TRUE(client->PushUpdate(a, second).ok());
  auto any = transport_->AwaitAny(clock_.Now() + absl::Seconds(5));
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
  WorkerSession w = RegisterWorker(*client);
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

TEST_F(TransportTest, CancelRemovesPendingAndDiscardsLeasedResults) {
  Start(10);
  auto client = NewClient();
  WorkerSession w = RegisterWorker(*client);
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
  auto any = transport_->AwaitAny(clock_.Now() + absl::Seconds(5));
  ASSERT_TRUE(any.ok());
  ASSERT_TRUE(any->has_value());
  EXPECT_EQ((*any)->id, 3u);
}

TEST_F(TransportTest, ShutdownWakesEveryoneAndTellsWorkers) {
  Start(10);
  auto client = NewClient();
  WorkerSession w = RegisterWorker(*client);
  transport_->Submit(MakeTask(1));
  ASSERT_EQ(client->GetTask(w, 1, 0)->tasks_size(), 1);
  const absl::Time t0 = clock_.Now();
  absl::StatusOr<wire::GetTaskResponse> poll;
  absl::StatusOr<TaskResult> awaited;
  std::thread poller([&] { poll = client->GetTask(w, 1, 8.0); });
  std::thread waiter([&] { awaited = transport_->Await(1); });
  WaitForTimedWaiters(1);  // the long poll waits (Await waits untimed)
  transport_->Shutdown();
  transport_->Shutdown();  // idempotent
  poller.join();
  waiter.join();
  ASSERT_TRUE(poll.ok()) << poll.status();
  EXPECT_TRUE(poll->run_finished());
  EXPECT_EQ(awaited.status().code(), absl::StatusCode::kCancelled);
  // Every worker has heard it, so the server stops without waiting out the
  // grace: the clock never moves. (The real-time bound only turns a hang
  // into a failure.)
  absl::Notification stopped;
  std::thread closer([&] {
    transport_.reset();
    stopped.Notify();
  });
  EXPECT_TRUE(stopped.WaitForNotificationWithTimeout(absl::Seconds(30)));
  if (!stopped.HasBeenNotified()) clock_.Advance(absl::Seconds(10));
  closer.join();
  EXPECT_EQ(clock_.Now(), t0);
}

TEST_F(TransportTest, ALingeringServerTellsWorkersThatReconnectAfterTheEnd) {
  GrpcServerOptions options;
  options.end_linger_s = 5;
  Start(10, options);
  transport_->Shutdown();
  // A worker of an interrupted run reconnects after the end and hears it.
  auto client = NewClient();
  WorkerSession w = RegisterWorker(*client);
  auto poll = client->GetTask(w, 1, 0);
  ASSERT_TRUE(poll.ok()) << poll.status();
  EXPECT_TRUE(poll->run_finished());
  // Every registered worker has heard it, yet the server stays for the
  // linger (on the fake clock) and stops once it has passed.
  absl::Notification stopped;
  std::thread closer([&] {
    transport_.reset();
    stopped.Notify();
  });
  EXPECT_FALSE(stopped.WaitForNotificationWithTimeout(absl::Milliseconds(300)));
  clock_.Advance(absl::Seconds(5));
  EXPECT_TRUE(stopped.WaitForNotificationWithTimeout(absl::Seconds(30)));
  if (!stopped.HasBeenNotified()) clock_.Advance(absl::Seconds(10));
  closer.join();
}

// A run whose clients bring their own data: a client's tasks go only to the
// worker holding its folder, wait while none does, and follow the client
// when another worker registers its name (a restarted client).
TEST_F(TransportTest, LocalDataTasksGoOnlyToTheWorkerHoldingTheClient) {
  GrpcServerOptions options;
  options.local_client_names = {"a", "b", "c"};
  Start(10, options);
  auto register_as = [&](AggregatorClient& client, std::vector<std::string> names) {
    return client.Register(WorkerIdentity{
        .name = "w", .slots = 4, .numeric_fingerprints = {}, .local_clients = names});
  };
  auto c1 = NewClient();
  auto c2 = NewClient();
  absl::StatusOr<wire::RegisterResponse> r1 = register_as(*c1, {"c", "a"});
  ASSERT_TRUE(r1.ok()) << r1.status();
  ASSERT_EQ(r1->client_slots_size(), 2);
  EXPECT_EQ(r1->client_slots(0), 2u);
  EXPECT_EQ(r1->client_slots(1), 0u);
  EXPECT_EQ(r1->client_train_examples(0), 60u);
  const WorkerSession w1 = WorkerSession::Of(*r1);
  transport_->Submit(MakeTask(1, /*client=*/1));
  transport_->Submit(MakeTask(2, /*client=*/2));
  auto got = c1->GetTask(w1, 4, 0);
  ASSERT_TRUE(got.ok()) << got.status();
  ASSERT_EQ(got->tasks_size(), 1);  // client 2 ("c"); client 1 ("b") waits
  EXPECT_EQ(got->tasks(0).client_id(), 2u);
  absl::StatusOr<wire::RunStatusResponse> status = c1->RunStatus();
  ASSERT_TRUE(status.ok()) << status.status();
  EXPECT_EQ(status->clients_total(), 3u);
  EXPECT_EQ(status->clients_connected(), 2u);
  ASSERT_EQ(status->clients_missing_size(), 1);
  EXPECT_EQ(status->clients_missing(0), "b");
  absl::StatusOr<wire::RegisterResponse> r2 = register_as(*c2, {"b", "a"});
  ASSERT_TRUE(r2.ok()) << r2.status();
  const WorkerSession w2 = WorkerSession::Of(*r2);
  transport_->Submit(MakeTask(3, /*client=*/0));
  got = c1->GetTask(w1, 4, 0);  // "a" moved to the second worker
  ASSERT_TRUE(got.ok());
  EXPECT_EQ(got->tasks_size(), 0);
  got = c2->GetTask(w2, 4, 0);
  ASSERT_TRUE(got.ok());
  ASSERT_EQ(got->tasks_size(), 2);
  EXPECT_EQ(got->tasks(0).client_id(), 1u);
  EXPECT_EQ(got->tasks(1).client_id(), 0u);
  status = c1->RunStatus();
  ASSERT_TRUE(status.ok()) << status.status();
  EXPECT_EQ(status->clients_connected(), 3u);
  EXPECT_EQ(status->clients_missing_size(), 0);

  // Workers of the wrong kind, unknown and repeated names are refused.
  auto c3 = NewClient();
  absl::StatusOr<wire::RegisterResponse> bad = c3->Register("plain", 1);
  EXPECT_EQ(bad.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(bad.status().message(), HasSubstr("brings no client data"));
  bad = register_as(*c3, {"z"});
  EXPECT_EQ(bad.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(bad.status().message(),
              HasSubstr("client 'z', which is not in this run's client list"));
  bad = register_as(*c3, {"b", "b"});
  EXPECT_EQ(bad.status().code(), absl::StatusCode::kInvalidArgument);
}

TEST_F(TransportTest, ASimulationServerRefusesWorkersThatBringData) {
  Start(10);
  auto client = NewClient();
  absl::StatusOr<wire::RegisterResponse> r = client->Register(
      WorkerIdentity{.name = "w", .numeric_fingerprints = {}, .local_clients = {"a"}});
  EXPECT_EQ(r.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(r.status().message(), HasSubstr("simulates its clients"));
}

TEST_F(TransportTest, HeartbeatSaysRunFinishedAfterShutdown) {
  Start(10);
  auto client = NewClient();
  WorkerSession w = RegisterWorker(*client);
  auto hb = client->Heartbeat(w, {});
  ASSERT_TRUE(hb.ok());
  EXPECT_FALSE(hb->run_finished());
  transport_->Shutdown();
  hb = client->Heartbeat(w, {});
  ASSERT_TRUE(hb.ok());
  EXPECT_TRUE(hb->run_finished());
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
