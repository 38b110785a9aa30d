#include "client/worker.h"

#include <memory>
#include <thread>
#include <vector>

#include "config/scenario_file.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "proto/fedsim.grpc.pb.h"
#include "server/aggregator_client.h"
#include "server/grpc_transport.h"
#include "sim/run_setup.h"
#include "sim/task_runner.h"

namespace fedsim {
namespace {

using ::testing::HasSubstr;

// A small generated-data run: no files, softmax regression, 12 clients.
config::Scenario TinyScenario() {
  auto s = ParseScenarioText(
      "num_clients: 12\n"
      "dataset { synthetic { alpha: 1 beta: 1 } }\n"
      "model { softmax {} }\n"
      "algorithm { fedavg { clients_per_round: 2 } }\n"
      "local { steps: 5 batch_size: 10 lr: 0.01 }\n"
      "stop { max_commits: 1 }\n",
      "tiny.textproto", {});
  EXPECT_TRUE(s.ok()) << s.status();
  return s.ok() ? *s : config::Scenario();
}

class WorkerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    scenario_ = TinyScenario();
    auto data = BuildRunData(scenario_, ".");
    ASSERT_TRUE(data.ok()) << data.status();
    data_ = std::make_unique<RunData>(std::move(data).value());
    auto model = NewModel(data_->model);
    ASSERT_TRUE(model.ok());
    auto params = std::make_shared<std::vector<float>>((*model)->NumParams());
    (*model)->Init(1, *params);
    store_.Put(0, params);
    runner_ = std::make_unique<TaskRunner>(data_.get());
  }

  void StartServer(GrpcServerOptions options) {
    auto t = StartGrpcTransport(options, ScenarioToText(scenario_), store_.Get(0)->size(),
                                &store_);
    ASSERT_TRUE(t.ok()) << t.status();
    transport_ = std::move(t).value();
  }

  TaskSpec Task(TaskId id, ClientId client) {
    TaskSpec spec;
    spec.id = id;
    spec.client = client;
    spec.base_version = 0;
    spec.seed = 100 + id;
    spec.local = data_->local;
    return spec;
  }

  // The result the in-process path computes for `spec`.
  TaskResult Expected(const TaskSpec& spec) {
    auto r = runner_->Run(spec, *store_.Get(0));
    EXPECT_TRUE(r.ok()) << r.status();
    return r.ok() ? *r : TaskResult();
  }

  config::Scenario scenario_;
  std::unique_ptr<RunData> data_;
  std::unique_ptr<TaskRunner> runner_;
  ModelStore store_;
  std::unique_ptr<GrpcTransport> transport_;
};

TEST_F(WorkerTest, TrainsTasksBitIdenticallyAndExitsWhenTheRunEnds) {
  GrpcServerOptions options;
  options.heartbeat_interval_s = 0.1;
  StartServer(options);
  WorkerOptions wo;
  wo.server = transport_->address();
  wo.slots = 3;
  wo.name = "test-worker";
  WorkerSummary summary;
  absl::Status worker_status;
  std::thread worker([&] { worker_status = RunWorker(wo, &summary); });

  std::vector<TaskSpec> tasks;
  for (TaskId id = 1; id <= 8; ++id) tasks.push_back(Task(id, static_cast<ClientId>(id % 12)));
  for (const TaskSpec& t : tasks) transport_->Submit(t);
  for (const TaskSpec& t : tasks) {
    auto got = transport_->Await(t.id);
    ASSERT_TRUE(got.ok()) << got.status();
    TaskResult want = Expected(t);
    EXPECT_EQ(got->client, t.client);
    EXPECT_EQ(got->num_examples, want.num_examples);
    EXPECT_EQ(got->delta, want.delta) << "task " << t.id;
    EXPECT_EQ(got->metrics, want.metrics);
  }
  transport_->Shutdown();
  worker.join();
  EXPECT_TRUE(worker_status.ok()) << worker_status;
  EXPECT_EQ(summary.tasks_done, 8u);
  EXPECT_EQ(summary.models_fetched, 1u);  // one version, fetched once for 8 tasks
  EXPECT_EQ(summary.bytes_fetched, store_.Get(0)->size() * sizeof(float));
  EXPECT_EQ(summary.bytes_pushed, 8 * store_.Get(0)->size() * sizeof(float));
}

// A worker that leased a task and went silent (as if SIGKILLed): its task is
// re-leased to a live worker after the heartbeat timeout, with the same result.
TEST_F(WorkerTest, TaskOfADeadWorkerIsRedoneByAnother) {
  GrpcServerOptions options;
  options.heartbeat_interval_s = 0.05;
  options.heartbeat_timeout_s = 0.5;
  StartServer(options);
  AggregatorClient dead(NewWireChannel(transport_->address()));
  auto reg = dead.Register("dead", 1);
  ASSERT_TRUE(reg.ok());
  TaskSpec spec = Task(1, 5);
  transport_->Submit(spec);
  auto lease = dead.GetTask(reg->worker_id(), 1, 0);
  ASSERT_TRUE(lease.ok());
  ASSERT_EQ(lease->tasks_size(), 1);

  WorkerOptions wo;
  wo.server = transport_->address();
  wo.slots = 1;
  absl::Status worker_status;
  std::thread worker([&] { worker_status = RunWorker(wo); });
  auto got = transport_->Await(1);
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(got->delta, Expected(spec).delta);
  EXPECT_EQ(transport_->stats().tasks_requeued, 1u);
  transport_->Shutdown();
  worker.join();
  EXPECT_TRUE(worker_status.ok()) << worker_status;
}

// A server that registers workers and then only answers UNAVAILABLE, as if
// it had gone away mid-run.
class VanishingServer final : public wire::Aggregator::Service {
 public:
  explicit VanishingServer(std::string scenario_text) : scenario_text_(std::move(scenario_text)) {}
  grpc::Status Register(grpc::ServerContext*, const wire::RegisterRequest*,
                        wire::RegisterResponse* response) override {
    response->set_worker_id(1);
    response->set_scenario_text(scenario_text_);
    response->set_heartbeat_interval_s(0.05);
    return grpc::Status::OK;
  }
  grpc::Status GetTask(grpc::ServerContext*, const wire::GetTaskRequest*,
                       wire::GetTaskResponse*) override {
    return grpc::Status(grpc::StatusCode::UNAVAILABLE, "gone");
  }
  grpc::Status Heartbeat(grpc::ServerContext*, const wire::HeartbeatRequest*,
                         wire::HeartbeatResponse*) override {
    return grpc::Status(grpc::StatusCode::UNAVAILABLE, "gone");
  }

 private:
  std::string scenario_text_;
};

TEST_F(WorkerTest, ServerGoneMidRunIsUnavailableNamingTheAddress) {
  VanishingServer service(ScenarioToText(scenario_));
  grpc::ServerBuilder builder;
  int port = 0;
  builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &port);
  builder.RegisterService(&service);
  std::unique_ptr<grpc::Server> server = builder.BuildAndStart();
  ASSERT_NE(server, nullptr);
  WorkerOptions wo;
  wo.server = "127.0.0.1:" + std::to_string(port);
  wo.server_lost_timeout_s = 0.5;
  absl::Status status = RunWorker(wo);
  EXPECT_EQ(status.code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(status.message(), HasSubstr("lost the fedsim server at " + wo.server));
  server->Shutdown();
}

TEST(WorkerStartTest, NoServerIsAClearError) {
  WorkerOptions wo;
  wo.server = "127.0.0.1:1";
  wo.connect_timeout_s = 0.3;
  absl::Status status = RunWorker(wo);
  EXPECT_EQ(status.code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(status.message(), HasSubstr("127.0.0.1:1"));
}

TEST(WorkerStartTest, BadOptions) {
  WorkerOptions wo;
  EXPECT_EQ(RunWorker(wo).code(), absl::StatusCode::kInvalidArgument);
  wo.server = "127.0.0.1:1";
  wo.slots = 0;
  EXPECT_EQ(RunWorker(wo).code(), absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace fedsim
