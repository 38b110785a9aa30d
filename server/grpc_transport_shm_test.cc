// Shared-memory updates (rpc/shm_segment.h) end to end: a real server on
// loopback, the real client stub.
#include <sys/stat.h>

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <limits>
#include <memory>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "rpc/shm_segment.h"
#include "server/admission.h"
#include "server/transport_test_fixture.h"

namespace fedsim {
namespace testing_internal {
namespace {

using ::testing::HasSubstr;

class SharedMemoryTest : public TransportTest {
 protected:
  // Registers `client` and returns its session and whether the server
  // offered shared memory.
  std::pair<WorkerSession, bool> Register(AggregatorClient& client) {
    auto response = client.Register("shm", 2);
    EXPECT_TRUE(response.ok()) << response.status();
    if (!response.ok()) return {};
    return {WorkerSession::Of(*response), response->shared_memory_updates()};
  }
  std::shared_ptr<UpdateSegment> NewSegment(uint32_t slots) {
    absl::StatusOr<std::unique_ptr<UpdateSegment>> segment =
        UpdateSegment::Create(num_params_, slots);
    EXPECT_TRUE(segment.ok()) << segment.status();
    return segment.ok() ? std::shared_ptr<UpdateSegment>(*std::move(segment)) : nullptr;
  }
  // Pushes `result` (a new one, not a duplicate) and checks that the
  // transport delivers its delta bit for bit; *arrived (may be null) gets
  // what it delivered.
  void PushAndExpectIntact(AggregatorClient& client, const WorkerSession& worker,
                           const TaskResult& result, TaskResult* arrived = nullptr) {
    auto pushed = client.PushUpdate(worker, result);
    ASSERT_TRUE(pushed.ok()) << pushed.status();
    EXPECT_FALSE(*pushed);
    auto got = transport_->Await(result.id);
    ASSERT_TRUE(got.ok()) << got.status();
    EXPECT_EQ(got->delta, result.delta) << result.id;
    if (arrived != nullptr) *arrived = *std::move(got);
  }
  // A push written by hand: the header names `slot` of `segment`, and
  // `data` bytes follow in the same chunk.
  absl::Status RawSharedPush(const WorkerSession& worker, TaskId task, const std::string& segment,
                             uint32_t slot, const std::string& data) {
    wire::UpdateChunk chunk;
    wire::UpdateHeader* h = chunk.mutable_header();
    h->set_worker_id(worker.worker_id);
    h->set_session(worker.session);
    h->set_task_id(task);
    h->set_client_id(3);
    ModelRefToWire(kBase, h->mutable_base());
    h->set_num_examples(60);
    h->set_num_params(num_params_);
    h->set_shm_segment(segment);
    h->set_shm_slot(slot);
    chunk.set_data(data);
    return FromGrpcStatus(PushRaw(worker, task, {chunk}));
  }
};

TEST_F(SharedMemoryTest, AWorkerOnThisMachineHandsItsUpdatesOverInSharedMemory) {
  const size_t n = 300'000;  // more than one 1 MiB chunk if it were streamed
  Start(n);
  auto client = NewClient();
  auto [worker, offered] = Register(*client);
  ASSERT_TRUE(offered);
  std::shared_ptr<UpdateSegment> segment = NewSegment(2);
  ASSERT_NE(segment, nullptr);
  const std::string path = std::string(kShmDir) + "/" + segment->name();
  client->set_update_segment(segment);
  for (TaskId id : {1, 2, 3}) transport_->Submit(MakeTask(id));
  auto lease = client->GetTask(worker, 3, 1.0);
  ASSERT_TRUE(lease.ok()) << lease.status();
  ASSERT_EQ(lease->tasks_size(), 3);

  for (TaskId id : {1, 2, 3}) {  // more pushes than slots: slots come back
    TaskResult arrived;
    PushAndExpectIntact(*client, worker,
                        MakeResult(MakeTask(id), n, 0.01f * static_cast<float>(id)), &arrived);
    EXPECT_EQ(arrived.metrics.at("train_loss"), 0.5);
    // The server took the name at the first push: nothing is left behind.
    EXPECT_FALSE(std::filesystem::exists(path));
  }
  EXPECT_EQ(client->bytes_shared(), 3 * n * sizeof(float));
  EXPECT_EQ(client->bytes_pushed(), 3 * n * sizeof(float));
  GrpcTransportStats stats = transport_->stats();
  EXPECT_EQ(stats.updates_accepted, 3u);
  EXPECT_EQ(stats.bytes_received, 0u);  // nothing came through the socket

  // A resend of the same result is still recognised as a duplicate.
  auto again = client->PushUpdate(worker, MakeResult(MakeTask(1), n, 0.01f));
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_TRUE(*again);
}

// The server counts a FetchModel's bytes when gRPC ends the call on its side
// (OnDone), which may come just after the client has its answer: the count
// once it reached `want`, or after 5 s whatever it is.
uint64_t BytesSentOnceSettled(const GrpcTransport& transport, uint64_t want) {
  const absl::Time give_up = absl::Now() + absl::Seconds(5);
  while (transport.stats().bytes_sent < want && absl::Now() < give_up) {
    absl::SleepFor(absl::Milliseconds(1));
  }
  return transport.stats().bytes_sent;
}

// Downloads through the worker's own segment: the server writes the model
// into a slot and sends one chunk without data.
TEST_F(SharedMemoryTest, AWorkerOnThisMachineFetchesModelsThroughItsDownloadSegment) {
  const size_t n = 300'000;  // more than one 1 MiB chunk if it were streamed
  Start(n);
  auto client = NewClient();
  auto [worker, offered] = Register(*client);
  ASSERT_TRUE(offered);
  auto streamed = client->FetchModel(worker, kBase);  // before UseSharedMemory: streamed
  ASSERT_TRUE(streamed.ok()) << streamed.status();
  EXPECT_EQ(client->bytes_fetched_shared(), 0u);
  const uint64_t sent_streamed = BytesSentOnceSettled(*transport_, n * sizeof(float));
  EXPECT_EQ(sent_streamed, n * sizeof(float));

  client->UseSharedMemory(n, 1, [](const absl::Status& why) { ADD_FAILURE() << why; });
  for (int i = 0; i < 3; ++i) {  // the one slot comes back after each fetch
    auto model = client->FetchModel(worker, kBase);
    ASSERT_TRUE(model.ok()) << model.status();
    ASSERT_EQ(model->size(), n);
    EXPECT_EQ(std::memcmp(model->data(), streamed->data(), n * sizeof(float)), 0);
  }
  EXPECT_EQ(client->bytes_fetched_shared(), 3 * n * sizeof(float));
  EXPECT_EQ(client->bytes_fetched(), 4 * n * sizeof(float));
  EXPECT_EQ(BytesSentOnceSettled(*transport_, 4 * n * sizeof(float)), 4 * n * sizeof(float));
  // A model the server does not keep is still NotFound, and leaves the
  // slot usable.
  EXPECT_EQ(client->FetchModel(worker, ModelRef::Global(99)).status().code(),
            absl::StatusCode::kNotFound);
  auto again = client->FetchModel(worker, kBase);
  ASSERT_TRUE(again.ok()) << again.status();
  EXPECT_EQ(client->bytes_fetched_shared(), 4 * n * sizeof(float));
}

TEST_F(SharedMemoryTest, BadDownloadSlotsAreRefused) {
  const size_t n = 1000;
  Start(n);
  auto client = NewClient();
  auto [worker, offered] = Register(*client);
  ASSERT_TRUE(offered);
  std::shared_ptr<UpdateSegment> segment = NewSegment(2);
  ASSERT_NE(segment, nullptr);
  auto fetch = [&](const std::string& name, uint32_t slot) {
    wire::FetchModelRequest request;
    request.set_worker_id(worker.worker_id);
    request.set_session(worker.session);
    ModelRefToWire(kBase, request.mutable_model());
    request.set_shm_segment(name);
    request.set_shm_slot(slot);
    auto stub = wire::Aggregator::NewStub(NewWireChannel(transport_->address()));
    grpc::ClientContext context;
    auto reader = stub->FetchModel(&context, request);
    wire::ModelChunk chunk;
    int chunks = 0;
    while (reader->Read(&chunk)) {
      ++chunks;
      EXPECT_TRUE(chunk.in_shm_slot());
      EXPECT_TRUE(chunk.data().empty());
      EXPECT_EQ(chunk.num_params(), n);
    }
    const absl::Status status = FromGrpcStatus(reader->Finish());
    EXPECT_EQ(chunks, status.ok() ? 1 : 0);
    return status;
  };
  absl::Status status = fetch(segment->name(), 3);
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(status.message(), HasSubstr("slot 3 of 2"));
  status = fetch("/etc/passwd", 1);
  EXPECT_EQ(status.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(status.message(), HasSubstr("not a segment name"));
  // A segment of another size is not this model's.
  absl::StatusOr<std::unique_ptr<UpdateSegment>> small = UpdateSegment::Create(7, 1);
  ASSERT_TRUE(small.ok()) << small.status();
  status = fetch((*small)->name(), 1);
  EXPECT_EQ(status.code(), absl::StatusCode::kFailedPrecondition);
  ASSERT_TRUE(fetch(segment->name(), 2).ok());
  EXPECT_EQ(std::vector<float>(segment->Slot(2).begin(), segment->Slot(2).end()),
            *MakeModel(n, 0.001f));
}

TEST_F(SharedMemoryTest, AUnixSocketIsThisMachineAndOnlyItsOwnersToDial) {
  const std::string dir = ::testing::TempDir() + "/unix_socket_test";
  std::filesystem::remove_all(dir);
  ASSERT_TRUE(std::filesystem::create_directories(dir));
  const std::string address = "unix:" + dir + "/server.sock";
  GrpcServerOptions options;
  options.listen_address = address;
  const size_t n = 1000;
  Start(n, options);
  EXPECT_EQ(transport_->address(), address);
  struct stat st {};
  ASSERT_EQ(stat((dir + "/server.sock").c_str(), &st), 0);
  EXPECT_TRUE(S_ISSOCK(st.st_mode));
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  auto client = NewClient();
  auto [worker, offered] = Register(*client);
  EXPECT_TRUE(offered);  // a Unix-socket peer is on this machine
  transport_->Submit(MakeTask(1));
  auto lease = client->GetTask(worker, 1, 1.0);
  ASSERT_TRUE(lease.ok()) << lease.status();
  ASSERT_EQ(lease->tasks_size(), 1);
  PushAndExpectIntact(*client, worker, MakeResult(MakeTask(1), n));
}

TEST_F(SharedMemoryTest, ARefusedSegmentTurnsTheWorkerBackToStreaming) {
  const size_t n = 1000;
  GrpcServerOptions options;
  options.shared_memory_updates = false;
  Start(n, options);
  auto client = NewClient();
  auto [worker, offered] = Register(*client);
  EXPECT_FALSE(offered);
  client->UseSharedMemory(n, 1, {});  // used anyway: the server refuses it
  transport_->Submit(MakeTask(1));
  transport_->Submit(MakeTask(2));
  ASSERT_TRUE(client->GetTask(worker, 2, 1.0).ok());
  for (TaskId id : {1, 2}) PushAndExpectIntact(*client, worker, MakeResult(MakeTask(id), n));
  EXPECT_EQ(client->bytes_shared(), 0u);
  EXPECT_EQ(transport_->stats().bytes_received, 2 * n * sizeof(float));
  // Downloads too.
  for (int i = 0; i < 2; ++i) {
    auto model = client->FetchModel(worker, kBase);
    ASSERT_TRUE(model.ok()) << model.status();
    EXPECT_EQ(*model, *MakeModel(n, 0.001f));
  }
  EXPECT_EQ(client->bytes_fetched_shared(), 0u);
  EXPECT_EQ(client->bytes_fetched(), 2 * n * sizeof(float));
}

TEST_F(SharedMemoryTest, ASegmentTheServerCannotSeeIsRefusedAndTheUpdateStreamed) {
  const size_t n = 1000;
  Start(n);
  auto client = NewClient();
  auto [worker, offered] = Register(*client);
  ASSERT_TRUE(offered);
  std::shared_ptr<UpdateSegment> segment = NewSegment(1);
  // As if the server were on another machine: no such file where it looks.
  std::filesystem::remove(std::string(kShmDir) + "/" + segment->name());
  client->set_update_segment(segment);
  transport_->Submit(MakeTask(1));
  ASSERT_TRUE(client->GetTask(worker, 1, 1.0).ok());
  PushAndExpectIntact(*client, worker, MakeResult(MakeTask(1), n));
  EXPECT_EQ(client->bytes_shared(), 0u);
}

TEST_F(SharedMemoryTest, BadSharedMemoryUpdatesAreRejected) {
  const size_t n = 1000;
  Start(n);
  auto client = NewClient();
  auto [worker, offered] = Register(*client);
  ASSERT_TRUE(offered);
  std::shared_ptr<UpdateSegment> segment = NewSegment(2);
  client->set_update_segment(segment);
  for (TaskId id : {1, 2, 3}) transport_->Submit(MakeTask(id));
  ASSERT_TRUE(client->GetTask(worker, 3, 1.0).ok());

  TaskResult nan = MakeResult(MakeTask(1), n);
  nan.delta[17] = std::numeric_limits<float>::quiet_NaN();
  absl::Status status = client->PushUpdate(worker, nan).status();
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(status.message(), HasSubstr("index 17"));

  status = RawSharedPush(worker, 2, segment->name(), 3, "");
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(status.message(), HasSubstr("names slot 3 of 2"));

  status = RawSharedPush(worker, 2, segment->name(), 2, std::string(16, '\0'));
  EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(status.message(), HasSubstr("streams data too"));

  status = RawSharedPush(worker, 2, "/etc/passwd", 1, "");
  EXPECT_EQ(status.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(status.message(), HasSubstr("not a segment name"));

  // The failed push retired its slot; the other one still works, and so
  // does the transport.
  PushAndExpectIntact(*client, worker, MakeResult(MakeTask(3), n));
  EXPECT_EQ(client->bytes_shared(), n * sizeof(float));
}

}  // namespace
}  // namespace testing_internal
}  // namespace fedsim
