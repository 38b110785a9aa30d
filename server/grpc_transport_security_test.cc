// Regression tests for what a hostile or broken peer could do (issue 13):
// impersonate a worker, poison the aggregation weight, exhaust the server's
// memory, stall the run, call without the run token, split the fleet by
// sharing a port. Each test is named after what it stops.
#include <cstdio>
#include <cstdlib>
#include <limits>
#include <optional>
#include <string>
#include <thread>

#include "core/clock.h"
#include "gmock/gmock.h"
#include "grpcpp/generic/generic_stub.h"
#include "grpcpp/impl/client_unary_call.h"
#include "gtest/gtest.h"
#include "proto/fedsim.grpc.pb.h"
#include "rpc/aggregator_client.h"
#include "rpc/auth.h"
#include "rpc/wire.h"
#include "server/grpc_transport.h"
#include "server/listener.h"
#include "server/transport_test_fixture.h"

namespace fedsim {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;
using testing_internal::kBase;
using testing_internal::MakeResult;
using testing_internal::MakeTask;
using testing_internal::TransportTest;

constexpr char kToken[] = "0123456789abcdef0123456789abcdef";

// Collects what the server logs.
class LogCapture {
 public:
  LogCapture() : file_(open_memstream(&data_, &size_)) {}
  ~LogCapture() {
    if (file_ != nullptr) std::fclose(file_);
    std::free(data_);
  }
  FILE* file() { return file_; }
  // Everything logged so far; ends the capture.
  std::string Take() {
    std::fclose(file_);
    file_ = nullptr;
    return std::string(data_, size_);
  }

 private:
  char* data_ = nullptr;
  size_t size_ = 0;
  FILE* file_;
};

TEST_F(TransportTest, SessionsAreUnguessableAndAnotherSessionCannotActAsAWorker) {
  LogCapture log;
  GrpcServerOptions options;
  options.log = log.file();
  Start(10, options);
  auto client = NewClient();
  WorkerSession real = RegisterWorker(*client);
  WorkerSession other = RegisterWorker(*client);
  EXPECT_EQ(real.session.size(), 32u);
  EXPECT_NE(real.session, other.session);
  transport_->Submit(MakeTask(1));
  ASSERT_EQ(client->GetTask(real, 1, 0)->tasks_size(), 1);

  // Regression: ids are 1, 2, 3, ...; anyone could pass worker_id 1 and take
  // its tasks or push its updates.
  for (const WorkerSession& fake :
       {WorkerSession{real.worker_id, ""}, WorkerSession{real.worker_id, other.session},
        WorkerSession{real.worker_id, std::string(32, '0')}, WorkerSession{99, real.session}}) {
    transport_->Submit(MakeTask(100 + fake.worker_id));
    auto stolen = client->GetTask(fake, 1, 0);
    EXPECT_EQ(stolen.status().code(), absl::StatusCode::kFailedPrecondition);
    EXPECT_THAT(stolen.status().message(), HasSubstr("unknown worker"));
    EXPECT_EQ(client->PushUpdate(fake, MakeResult(MakeTask(1), 10)).status().code(),
              absl::StatusCode::kFailedPrecondition);
    EXPECT_EQ(client->FetchModel(fake, kBase).status().code(),
              absl::StatusCode::kFailedPrecondition);
    auto beat = client->Heartbeat(fake, {1});
    ASSERT_TRUE(beat.ok());
    EXPECT_TRUE(beat->unknown_worker());
  }
  EXPECT_EQ(transport_->stats().updates_accepted, 0u);
  EXPECT_GE(transport_->stats().unknown_sessions, 12u);

  // A fake heartbeat does not keep the real worker alive: with only fake
  // beats it is dropped at its timeout and its task goes back to the queue.
  for (int i = 0; i < 6; ++i) {
    clock_.Advance(absl::Seconds(1));
    ASSERT_TRUE(client->Heartbeat(WorkerSession{real.worker_id, other.session}, {1}).ok());
    ASSERT_TRUE(client->Heartbeat(other, {}).ok());
  }
  EXPECT_EQ(transport_->stats().workers_dropped, 1u);
  // The real worker's own session still delivers the task it held.
  auto pushed = client->PushUpdate(real, MakeResult(MakeTask(1), 10));
  ASSERT_TRUE(pushed.ok()) << pushed.status();
  EXPECT_EQ(transport_->stats().updates_accepted, 1u);
  TearDown();
  EXPECT_THAT(log.Take(), HasSubstr("refused a call as worker 1 with another session"));
}

TEST_F(TransportTest, AggregationWeightIsTheServersOwnNiNeverTheWorkers) {
  GrpcServerOptions options;
  options.client_examples = {10, 20, 30, 600};
  Start(10, options);
  auto client = NewClient();
  WorkerSession w = RegisterWorker(*client);
  transport_->Submit(MakeTask(1, 3));
  transport_->Submit(MakeTask(2, 7));  // no n_i for client 7
  ASSERT_EQ(client->GetTask(w, 2, 0)->tasks_size(), 2);

  // Regression: a worker sent num_examples = 10^15 and it became the weight.
  TaskResult poisoned = MakeResult(MakeTask(1, 3), 10);
  poisoned.num_examples = 1'000'000'000'000'000ull;
  ASSERT_TRUE(client->PushUpdate(w, poisoned).ok());
  auto arrived = transport_->Await(1);
  ASSERT_TRUE(arrived.ok()) << arrived.status();
  EXPECT_EQ(arrived->num_examples, 600u);
  EXPECT_EQ(transport_->stats().num_examples_ignored, 1u);

  auto unknown = client->PushUpdate(w, MakeResult(MakeTask(2, 7), 10)).status();
  EXPECT_EQ(unknown.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(unknown.message(), HasSubstr("no example count for client 7"));

  // Replaced wholesale (`fedsim run` learns n_i after the server starts).
  transport_->SetClientExamples({1, 1, 1, 1, 1, 1, 1, 42});
  ASSERT_TRUE(client->PushUpdate(w, MakeResult(MakeTask(2, 7), 10)).ok());
  arrived = transport_->Await(2);
  ASSERT_TRUE(arrived.ok());
  EXPECT_EQ(arrived->num_examples, 42u);
}

TEST_F(TransportTest, NonFiniteOrTooManyMetricsAreRefused) {
  Start(10);
  auto client = NewClient();
  WorkerSession w = RegisterWorker(*client);
  transport_->Submit(MakeTask(1));
  ASSERT_EQ(client->GetTask(w, 1, 0)->tasks_size(), 1);
  TaskResult nan_metric = MakeResult(MakeTask(1), 10);
  nan_metric.metrics["train_loss"] = std::numeric_limits<double>::quiet_NaN();
  auto s = client->PushUpdate(w, nan_metric).status();
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(s.message(), HasSubstr("metric 'train_loss' is not finite"));
  TaskResult many = MakeResult(MakeTask(1), 10);
  for (int i = 0; i <= kMaxUpdateMetrics; ++i) many.metrics["m" + std::to_string(i)] = i;
  s = client->PushUpdate(w, many).status();
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(s.message(), HasSubstr("more than 256"));
  EXPECT_TRUE(client->PushUpdate(w, MakeResult(MakeTask(1), 10)).ok());
}

// Regression: one 256 MiB chunk for a task that does not exist was buffered
// whole before it was refused (server memory 49 MB -> 714 MB). gRPC 1.51
// buffers a whole message once the handler reads, whatever its size: so a
// push is refused on its metadata, before anything is read, unless its
// worker holds the task; and any message over the cap is refused.
TEST_F(TransportTest, OversizedChunkIsRefusedAndAnUnleasedOneIsNeverRead) {
  Start(10);
  auto client = NewClient();
  WorkerSession w = RegisterWorker(*client);
  transport_->Submit(MakeTask(1));
  ASSERT_EQ(client->GetTask(w, 1, 0)->tasks_size(), 1);
  auto send = [&](uint64_t task_id) {
    wire::UpdateChunk chunk;
    wire::UpdateHeader* header = chunk.mutable_header();
    header->set_worker_id(w.worker_id);
    header->set_session(w.session);
    header->set_task_id(task_id);
    chunk.set_data(std::string(MaxReceiveMessageBytes() + 1, 'x'));
    return PushRaw(w, task_id, {chunk});
  };
  grpc::Status unknown_task = send(12345);
  EXPECT_EQ(unknown_task.error_code(), grpc::StatusCode::NOT_FOUND) << unknown_task.error_message();
  grpc::Status too_big = send(1);
  EXPECT_EQ(too_big.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED) << too_big.error_message();
  EXPECT_EQ(transport_->stats().bytes_received, 0u);  // the handler never took a byte
  // The task is still open to a good update, once the refused stream has
  // let go of it: gRPC can answer the client before the handler ends, and a
  // push meanwhile is refused as a second one arriving for the task.
  while (transport_->stats().updates_arriving != 0) std::this_thread::yield();
  EXPECT_TRUE(client->PushUpdate(w, MakeResult(MakeTask(1), 10)).ok());
}

// One worker cannot make the server hold two model-sized buffers for one
// task: a second stream for a task whose update is arriving is refused at
// its header.
TEST_F(TransportTest, SecondConcurrentUpdateForATaskIsRefusedAtItsHeader) {
  const size_t n = 1000;
  Start(n);
  auto client = NewClient();
  WorkerSession w = RegisterWorker(*client);
  transport_->Submit(MakeTask(1));
  ASSERT_EQ(client->GetTask(w, 1, 0)->tasks_size(), 1);

  auto stub = wire::Aggregator::NewStub(NewWireChannel(transport_->address()));
  grpc::ClientContext context;
  AddPushMetadata(&context, w, 1);
  wire::PushUpdateResponse response;
  auto writer = stub->PushUpdate(&context, &response);
  wire::UpdateChunk chunk;
  wire::UpdateHeader* header = chunk.mutable_header();
  header->set_worker_id(w.worker_id);
  header->set_session(w.session);
  header->set_task_id(1);
  header->set_client_id(3);
  ModelRefToWire(kBase, header->mutable_base());
  header->set_num_params(n);
  chunk.set_data(std::string(400, '\0'));  // 100 of 1000 floats
  ASSERT_TRUE(writer->Write(chunk));
  // The server has taken the stream for the task.
  while (transport_->stats().updates_arriving == 0) std::this_thread::yield();

  auto second = client->PushUpdate(w, MakeResult(MakeTask(1), n));
  EXPECT_EQ(second.status().code(), absl::StatusCode::kResourceExhausted);
  EXPECT_THAT(second.status().message(), HasSubstr("already arriving"));

  chunk.clear_header();
  chunk.set_offset(100);
  chunk.set_data(std::string(3600, '\0'));
  ASSERT_TRUE(writer->Write(chunk));
  writer->WritesDone();
  ASSERT_TRUE(writer->Finish().ok());
  EXPECT_EQ(transport_->stats().updates_arriving, 0u);
  EXPECT_EQ(transport_->stats().updates_accepted, 1u);
}

// Regression: a worker that leased tasks and kept heartbeating but never
// answered held the run at commit 0 for as long as it liked.
TEST_F(TransportTest, LeaseWithoutAnswerIsReDispatchedAtItsDeadline) {
  LogCapture log;
  GrpcServerOptions options;
  options.task_deadline_slack_s = 10;
  options.task_deadline_factor = 4;
  options.log = log.file();
  Start(10, options);
  auto client = NewClient();
  WorkerSession staller = RegisterWorker(*client);
  transport_->Submit(MakeTask(1));
  ASSERT_EQ(client->GetTask(staller, 1, 0)->tasks_size(), 1);
  // Heartbeats every 2 s (well within the 5 s timeout) up to just before
  // the deadline: the task stays leased.
  for (int i = 0; i < 4; ++i) {
    clock_.Advance(absl::Seconds(2));
    ASSERT_TRUE(client->Heartbeat(staller, {1}).ok());
  }
  clock_.Advance(absl::Milliseconds(1999));
  ASSERT_TRUE(client->Heartbeat(staller, {1}).ok());
  WorkerSession honest = RegisterWorker(*client);
  EXPECT_EQ(client->GetTask(honest, 1, 0)->tasks_size(), 0);
  EXPECT_EQ(transport_->stats().leases_expired, 0u);
  clock_.Advance(absl::Milliseconds(1));  // 10 s: the deadline
  auto lease = client->GetTask(honest, 1, 0);
  ASSERT_TRUE(lease.ok());
  ASSERT_EQ(lease->tasks_size(), 1);
  EXPECT_EQ(lease->tasks(0).task_id(), 1u);
  EXPECT_EQ(transport_->stats().leases_expired, 1u);
  EXPECT_EQ(transport_->stats().workers_dropped, 0u);  // it heartbeats: not silent

  // The second lease of a task that expired once gets twice the budget:
  // still held 19 s later.
  for (int i = 0; i < 9; ++i) {
    clock_.Advance(absl::Seconds(2));
    ASSERT_TRUE(client->Heartbeat(honest, {1}).ok());
    ASSERT_TRUE(client->Heartbeat(staller, {1}).ok());
  }
  clock_.Advance(absl::Seconds(1));
  ASSERT_TRUE(client->Heartbeat(honest, {1}).ok());
  EXPECT_EQ(transport_->stats().leases_expired, 1u);
  ASSERT_TRUE(client->PushUpdate(honest, MakeResult(MakeTask(1), 10)).ok());
  ASSERT_TRUE(transport_->Await(1).ok());
  // The staller's late identical result is a duplicate, nothing more.
  auto late = client->PushUpdate(staller, MakeResult(MakeTask(1), 10));
  ASSERT_TRUE(late.ok()) << late.status();
  EXPECT_TRUE(*late);
  TearDown();
  EXPECT_THAT(log.Take(), HasSubstr("task 1 leased to worker 1 (test) got no result within 10s: "
                                    "re-dispatched"));
}

TEST_F(TransportTest, CallsWithoutTheRunTokenAreUnauthenticatedAndLoggedWithoutIt) {
  LogCapture log;
  GrpcServerOptions options;
  options.token = kToken;
  options.log = log.file();
  Start(10, options);

  auto anonymous = NewClient();
  auto refused = anonymous->Register("anon", 1);
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kUnauthenticated);
  EXPECT_THAT(refused.status().message(), HasSubstr("missing run token"));
  EXPECT_EQ(anonymous->RunStatus().status().code(), absl::StatusCode::kUnauthenticated);

  auto guesser = NewClient();
  guesser->set_token("guessed-guessed-guessed-guessed");
  refused = guesser->Register("guess", 1);
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kUnauthenticated);
  EXPECT_THAT(refused.status().message(), Not(HasSubstr(kToken)));
  EXPECT_EQ(guesser->GetTask(WorkerSession{1, ""}, 1, 0).status().code(),
            absl::StatusCode::kUnauthenticated);

  auto member = NewClient();
  member->set_token(kToken);
  WorkerSession w = RegisterWorker(*member);
  EXPECT_EQ(w.worker_id, 1u);  // the refused calls registered nobody
  auto status = member->RunStatus();
  ASSERT_TRUE(status.ok()) << status.status();
  EXPECT_EQ(status->scenario_name(), "t");
  EXPECT_EQ(status->workers_connected(), 1u);
  EXPECT_EQ(transport_->stats().unauthenticated, 4u);

  TearDown();
  const std::string logged = log.Take();
  EXPECT_THAT(logged, HasSubstr("refused Register from "));
  EXPECT_THAT(logged, HasSubstr("wrong run token"));
  EXPECT_THAT(logged, Not(HasSubstr(kToken)));
  EXPECT_THAT(logged, Not(HasSubstr("guessed")));
}

TEST_F(TransportTest, RunStatusReportsProgressAndTheQueue) {
  Start(10);
  auto client = NewClient();
  WorkerSession w = RegisterWorker(*client);
  for (TaskId id = 1; id <= 3; ++id) transport_->Submit(MakeTask(id));
  ASSERT_EQ(client->GetTask(w, 1, 0)->tasks_size(), 1);
  ServerRunProgress progress;
  progress.commits = 7;
  progress.max_commits = 50;
  progress.virtual_time_s = 123.5;
  progress.has_accuracy = true;
  progress.last_accuracy = 0.8125;
  transport_->SetRunProgress(progress);
  clock_.Advance(absl::Seconds(3));
  auto status = client->RunStatus();
  ASSERT_TRUE(status.ok()) << status.status();
  EXPECT_EQ(status->commits(), 7u);
  EXPECT_EQ(status->max_commits(), 50u);
  EXPECT_EQ(status->virtual_time_s(), 123.5);
  EXPECT_TRUE(status->has_accuracy());
  EXPECT_EQ(status->last_accuracy(), 0.8125);
  EXPECT_EQ(status->tasks_in_flight(), 1u);
  EXPECT_EQ(status->tasks_pending(), 2u);
  EXPECT_EQ(status->uptime_s(), 3.0);
  EXPECT_FALSE(status->finished());
}

// Calls the standard health service, which needs no token.
grpc::Status HealthCheck(const std::shared_ptr<grpc::Channel>& channel, std::string* reply) {
  grpc::ClientContext context;
  context.set_deadline(GrpcTimeout(absl::Seconds(10)));
  grpc::ByteBuffer request, response;  // HealthCheckRequest{service: ""} is empty
  grpc::Slice empty("");
  request = grpc::ByteBuffer(&empty, 1);
  grpc::Status status = grpc::internal::BlockingUnaryCall<grpc::ByteBuffer, grpc::ByteBuffer>(
      channel.get(),
      grpc::internal::RpcMethod("/grpc.health.v1.Health/Check",
                                grpc::internal::RpcMethod::NORMAL_RPC),
      &context, request, &response);
  std::vector<grpc::Slice> slices;
  if (status.ok() && response.Dump(&slices).ok()) {
    for (const grpc::Slice& s : slices)
      reply->append(reinterpret_cast<const char*>(s.begin()), s.size());
  }
  return status;
}

TEST_F(TransportTest, HealthServiceAnswersWithoutTokenAndSaysNotServingOnceTheRunIsOver) {
  GrpcServerOptions options;
  options.token = kToken;
  Start(10, options);
  auto channel = NewWireChannel(transport_->address());
  std::string reply;
  grpc::Status status = HealthCheck(channel, &reply);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(reply, std::string("\x08\x01", 2));  // status: SERVING
  // A worker that has not heard the end keeps the server up for the grace.
  auto client = NewClient();
  client->set_token(kToken);
  RegisterWorker(*client);
  transport_->Shutdown();
  reply.clear();
  status = HealthCheck(channel, &reply);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_EQ(reply, std::string("\x08\x02", 2));  // status: NOT_SERVING
}

// Server reflection (what grpcurl uses) lists the Aggregator service.
TEST_F(TransportTest, ReflectionListsTheAggregatorService) {
  Start(10);
  auto channel = NewWireChannel(transport_->address());
  grpc::GenericStub stub(channel);
  grpc::CompletionQueue cq;
  grpc::ClientContext context;
  context.set_deadline(GrpcTimeout(absl::Seconds(10)));
  auto call = stub.PrepareCall(
      &context, "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo", &cq);
  auto step = [&](int tag) {
    void* got = nullptr;
    bool ok = false;
    return cq.Next(&got, &ok) && got == reinterpret_cast<void*>(tag) && ok;
  };
  call->StartCall(reinterpret_cast<void*>(1));
  ASSERT_TRUE(step(1));
  // ServerReflectionRequest{list_services: ""}: field 7, an empty string.
  grpc::Slice list(std::string("\x3a\x00", 2));
  call->Write(grpc::ByteBuffer(&list, 1), reinterpret_cast<void*>(2));
  ASSERT_TRUE(step(2));
  grpc::ByteBuffer reply;
  call->Read(&reply, reinterpret_cast<void*>(3));
  ASSERT_TRUE(step(3));
  std::vector<grpc::Slice> slices;
  ASSERT_TRUE(reply.Dump(&slices).ok());
  std::string bytes;
  for (const grpc::Slice& sl : slices)
    bytes.append(reinterpret_cast<const char*>(sl.begin()), sl.size());
  EXPECT_THAT(bytes, HasSubstr("fedsim.wire.Aggregator"));
  EXPECT_THAT(bytes, HasSubstr("grpc.health.v1.Health"));
  call->WritesDone(reinterpret_cast<void*>(4));
  ASSERT_TRUE(step(4));
  grpc::Status status;
  call->Finish(&status, reinterpret_cast<void*>(5));
  ASSERT_TRUE(step(5));
  EXPECT_TRUE(status.ok()) << status.error_message();
  cq.Shutdown();
  void* got;
  bool ok;
  while (cq.Next(&got, &ok)) {
  }
}

// Regression: two servers could bind the same port (SO_REUSEPORT) and split
// the workers; --listen=127.0.0.1:99999 listened on another port.
TEST(ListenerTest, SecondServerOnTheSamePortAndBadPortsFailToStart) {
  ModelStore store;
  store.Put(kBase, testing_internal::MakeModel(10, 1.0f));
  GrpcServerOptions options;
  options.client_examples = {1};
  auto first = StartGrpcTransport(options, "", 10, &store);
  ASSERT_TRUE(first.ok()) << first.status();
  options.listen_address = (*first)->address();
  auto second = StartGrpcTransport(options, "", 10, &store);
  EXPECT_EQ(second.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(second.status().message(), HasSubstr("cannot listen on " + options.listen_address));
  options.listen_address = "127.0.0.1:99999";
  auto big = StartGrpcTransport(options, "", 10, &store);
  EXPECT_EQ(big.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(big.status().message(), HasSubstr("0 to 65535"));
  (*first)->Shutdown();
}

TEST(ListenerTest, NonLoopbackNeedsTlsAndTokenOrInsecure) {
  const HostPort any{"0.0.0.0", 50051};
  absl::Status s = CheckListenPolicy("0.0.0.0:50051", any, false, false, false);
  EXPECT_EQ(s.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(s.message(), HasSubstr("refusing to listen on 0.0.0.0:50051 without TLS"));
  EXPECT_THAT(s.message(), HasSubstr("and a run token"));
  EXPECT_THAT(s.message(), HasSubstr("--listen=127.0.0.1:50051"));
  EXPECT_THAT(s.message(), HasSubstr("--insecure"));
  s = CheckListenPolicy("0.0.0.0:50051", any, true, false, false);
  EXPECT_THAT(s.message(), HasSubstr("without a run token"));
  EXPECT_THAT(s.message(), Not(HasSubstr("TLS (")));
  EXPECT_TRUE(CheckListenPolicy("0.0.0.0:50051", any, true, true, false).ok());
  EXPECT_TRUE(CheckListenPolicy("0.0.0.0:50051", any, false, false, true).ok());
  EXPECT_TRUE(CheckListenPolicy("127.0.0.1:1", HostPort{"127.0.0.1", 1}, false, false, false).ok());
  EXPECT_TRUE(CheckListenPolicy("[::1]:1", HostPort{"::1", 1}, false, false, false).ok());

  // And StartGrpcTransport applies it.
  ModelStore store;
  GrpcServerOptions options;
  options.listen_address = "0.0.0.0:0";
  auto refused = StartGrpcTransport(options, "", 10, &store);
  EXPECT_EQ(refused.status().code(), absl::StatusCode::kFailedPrecondition);
  options.insecure = true;
  auto taken = StartGrpcTransport(options, "", 10, &store);
  ASSERT_TRUE(taken.ok()) << taken.status();
  (*taken)->Shutdown();
}

}  // namespace
}  // namespace fedsim
