// The client stub against a scripted fake server: what it sends, and how it
// checks what it receives.
#include "rpc/aggregator_client.h"

#include <atomic>
#include <string>
#include <vector>

#include "absl/synchronization/mutex.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "rpc/auth.h"
#include "rpc/chunker.h"

namespace fedsim {
namespace {

using ::testing::HasSubstr;

const WorkerSession kWorker{7, "0123456789abcdef0123456789abcdef"};

enum class Serve { kGood, kGap, kOtherModel, kShort };

class FakeAggregator final : public wire::Aggregator::Service {
 public:
  grpc::Status Register(grpc::ServerContext*, const wire::RegisterRequest* request,
                        wire::RegisterResponse* response) override {
    absl::MutexLock lock(&mu_);
    registered_ = *request;
    response->set_worker_id(7);
    return grpc::Status::OK;
  }
  grpc::Status FetchModel(grpc::ServerContext* context, const wire::FetchModelRequest* request,
                          grpc::ServerWriter<wire::ModelChunk>* writer) override {
    {
      absl::MutexLock lock(&mu_);
      fetch_session_ = request->session();
      auto token = context->client_metadata().find(kTokenMetadataKey);
      fetch_token_ = token == context->client_metadata().end()
                         ? ""
                         : std::string(token->second.data(), token->second.size());
    }
    std::vector<float> model(1000);
    for (size_t i = 0; i < model.size(); ++i) model[i] = static_cast<float>(i);
    const Serve serve = serve_.load();
    wire::ModelChunk chunk;
    *chunk.mutable_model() = request->model();
    if (serve == Serve::kOtherModel) chunk.mutable_model()->set_version(99);
    chunk.set_num_params(serve == Serve::kShort ? 1001 : 1000);
    SplitIntoChunks(model, 1200, [&](uint64_t offset, std::string_view bytes) {
      chunk.set_offset(serve == Serve::kGap && offset > 0 ? offset + 1 : offset);
      chunk.set_data(std::string(bytes));
      return writer->Write(chunk);
    });
    return grpc::Status::OK;
  }
  grpc::Status PushUpdate(grpc::ServerContext*, grpc::ServerReader<wire::UpdateChunk>* reader,
                          wire::PushUpdateResponse*) override {
    absl::MutexLock lock(&mu_);
    wire::UpdateChunk chunk;
    while (reader->Read(&chunk)) pushed_.push_back(chunk);
    return grpc::Status::OK;
  }

  // Set by the test between calls; read by the server's threads (atomic:
  // the order gRPC gives the two is invisible to TSan).
  std::atomic<Serve> serve_ = Serve::kGood;
  absl::Mutex mu_;
  wire::RegisterRequest registered_ ABSL_GUARDED_BY(mu_);
  std::vector<wire::UpdateChunk> pushed_ ABSL_GUARDED_BY(mu_);
  std::string fetch_session_ ABSL_GUARDED_BY(mu_);
  std::string fetch_token_ ABSL_GUARDED_BY(mu_);
};

class AggregatorClientTest : public ::testing::Test {
 protected:
  void SetUp() override {
    grpc::ServerBuilder builder;
    builder.RegisterService(&service_);
    server_ = builder.BuildAndStart();
    ASSERT_NE(server_, nullptr);
  }
  void TearDown() override { server_->Shutdown(GrpcTimeout(absl::Seconds(1))); }

  AggregatorClient NewClient(size_t chunk_bytes = kMaxChunkBytes) {
    return AggregatorClient(server_->InProcessChannel(WireChannelArguments()), chunk_bytes);
  }

  FakeAggregator service_;
  std::unique_ptr<grpc::Server> server_;
};

TEST_F(AggregatorClientTest, RegisterSendsThisBuildsIdentity) {
  AggregatorClient client = NewClient();
  WorkerIdentity me;
  me.name = "w";
  me.slots = 3;
  me.numeric_fingerprints = {{"native", "n"}, {"reproducible", "portable/blocking=64"}};
  auto response = client.Register(me);
  ASSERT_TRUE(response.ok()) << response.status();
  EXPECT_EQ(response->worker_id(), 7u);
  absl::MutexLock lock(&service_.mu_);
  EXPECT_EQ(service_.registered_.protocol_version(), kProtocolVersion);
  EXPECT_EQ(service_.registered_.worker_name(), "w");
  EXPECT_EQ(service_.registered_.slots(), 3u);
  EXPECT_EQ(service_.registered_.build_id(), std::string(BuildId()));
  EXPECT_FALSE(service_.registered_.build_id().empty());
  ASSERT_EQ(service_.registered_.numeric_fingerprints().size(), 2u);
  EXPECT_EQ(service_.registered_.numeric_fingerprints().at("reproducible"), "portable/blocking=64");
  EXPECT_EQ(service_.registered_.numeric_fingerprints().at("native"), "n");
}

TEST_F(AggregatorClientTest, FetchReassemblesAGoodModel) {
  AggregatorClient client = NewClient();
  auto model = client.FetchModel(kWorker, ModelRef::OfClient(2, 4));
  ASSERT_TRUE(model.ok()) << model.status();
  ASSERT_EQ(model->size(), 1000u);
  EXPECT_EQ((*model)[999], 999.0f);
  EXPECT_EQ(client.bytes_fetched(), 4000u);
}

// Every call carries the worker's session and the run token.
TEST_F(AggregatorClientTest, CallsCarryTheSessionAndTheToken) {
  AggregatorClient client = NewClient();
  ASSERT_TRUE(client.FetchModel(kWorker, ModelRef::Global(1)).ok());
  {
    absl::MutexLock lock(&service_.mu_);
    EXPECT_EQ(service_.fetch_session_, kWorker.session);
    EXPECT_EQ(service_.fetch_token_, "");  // no token set: none sent
  }
  client.set_token("run-token-0123456789");
  ASSERT_TRUE(client.FetchModel(kWorker, ModelRef::Global(1)).ok());
  {
    absl::MutexLock lock(&service_.mu_);
    EXPECT_EQ(service_.fetch_token_, "Bearer run-token-0123456789");
  }
  TaskResult result;
  result.delta.assign(4, 1.0f);
  ASSERT_TRUE(client.PushUpdate(kWorker, result).ok());
  absl::MutexLock lock(&service_.mu_);
  ASSERT_FALSE(service_.pushed_.empty());
  EXPECT_EQ(service_.pushed_[0].header().session(), kWorker.session);
  EXPECT_EQ(service_.pushed_[0].header().worker_id(), kWorker.worker_id);
}

TEST_F(AggregatorClientTest, FetchRefusesBadChunksAsDataLoss) {
  AggregatorClient client = NewClient();
  service_.serve_ = Serve::kGap;
  auto gap = client.FetchModel(kWorker, ModelRef::Global(3));
  EXPECT_EQ(gap.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(gap.status().message(), HasSubstr("FetchModel(global@3)"));
  EXPECT_THAT(gap.status().message(), HasSubstr("expected offset 300, got 301"));
  service_.serve_ = Serve::kOtherModel;
  auto other = client.FetchModel(kWorker, ModelRef::Global(3));
  EXPECT_EQ(other.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(other.status().message(), HasSubstr("belongs to global@99"));
  service_.serve_ = Serve::kShort;
  auto short_model = client.FetchModel(kWorker, ModelRef::Global(3));
  EXPECT_EQ(short_model.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(short_model.status().message(), HasSubstr("expected 1001 floats, got 1000"));
}

TEST_F(AggregatorClientTest, PushSendsTheHeaderOnceAndContiguousChunks) {
  AggregatorClient client = NewClient(/*chunk_bytes=*/64);
  TaskResult result;
  result.id = 5;
  result.client = 2;
  result.base = ModelRef::Global(4);
  result.num_examples = 30;
  result.delta.assign(40, 0.5f);
  result.metrics["train_loss"] = 1.5;
  auto pushed = client.PushUpdate(kWorker, result);
  ASSERT_TRUE(pushed.ok()) << pushed.status();
  EXPECT_FALSE(*pushed);
  EXPECT_EQ(client.bytes_pushed(), 160u);
  absl::MutexLock lock(&service_.mu_);
  ASSERT_EQ(service_.pushed_.size(), 3u);  // 16 + 16 + 8 floats
  const wire::UpdateHeader& h = service_.pushed_[0].header();
  EXPECT_EQ(h.task_id(), 5u);
  EXPECT_EQ(h.base().version(), 4u);
  EXPECT_EQ(h.num_params(), 40u);
  EXPECT_EQ(h.metrics().at("train_loss"), 1.5);
  EXPECT_FALSE(service_.pushed_[1].has_header());
  EXPECT_FALSE(service_.pushed_[2].has_header());
  EXPECT_EQ(service_.pushed_[1].offset(), 16u);
  EXPECT_EQ(service_.pushed_[2].offset(), 32u);
  EXPECT_EQ(service_.pushed_[2].data().size(), 32u);
}

}  // namespace
}  // namespace fedsim
