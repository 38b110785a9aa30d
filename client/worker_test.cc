// The worker against scripted fake servers, on a FakeClock. (The worker with
// the real server is tested in tests/worker_server_test.cc: client/ does not
// depend on server/.)
#include "client/worker.h"

#include <atomic>
#include <memory>
#include <string>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "config/scenario_file.h"
#include "core/clock.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "proto/fedsim.grpc.pb.h"
#include "rpc/wire.h"
#include "runtime/model_setup.h"
#include "util/build_info.h"

namespace fedsim {
namespace {

using ::testing::HasSubstr;

std::string TinyScenarioText() {
  auto s = ParseScenarioText(
      "num_clients: 12\n"
      "dataset { synthetic { alpha: 1 beta: 1 } }\n"
      "model { softmax {} }\n"
      "algorithm { fedavg { clients_per_round: 2 } }\n"
      "local { steps: 5 batch_size: 10 lr: 0.01 }\n"
      "stop { max_commits: 1 }\n",
      "tiny.textproto", {});
  EXPECT_TRUE(s.ok()) << s.status();
  return s.ok() ? ScenarioToText(*s) : "";
}

// A server that registers workers and then only answers UNAVAILABLE, as if
// it had gone away mid-run; or, with `refusal`, refuses them at Register.
class ScriptedServer final : public wire::Aggregator::Service {
 public:
  explicit ScriptedServer(std::string scenario_text, absl::Status refusal = absl::OkStatus())
      : scenario_text_(std::move(scenario_text)), refusal_(std::move(refusal)) {}
  grpc::Status Register(grpc::ServerContext*, const wire::RegisterRequest* request,
                        wire::RegisterResponse* response) override {
    absl::MutexLock lock(&mu_);
    registered_ = *request;
    if (!refusal_.ok()) return ToGrpcStatus(refusal_);
    response->set_worker_id(1);
    response->set_scenario_text(scenario_text_);
    response->set_heartbeat_interval_s(0.05);
    return grpc::Status::OK;
  }
  grpc::Status GetTask(grpc::ServerContext*, const wire::GetTaskRequest*,
                       wire::GetTaskResponse*) override {
    get_task_calls_.fetch_add(1);
    return grpc::Status(grpc::StatusCode::UNAVAILABLE, "gone");
  }
  int get_task_calls() const { return get_task_calls_.load(); }
  grpc::Status Heartbeat(grpc::ServerContext*, const wire::HeartbeatRequest*,
                         wire::HeartbeatResponse* response) override {
    absl::MutexLock lock(&mu_);
    if (restarted_scenario_.empty()) return grpc::Status(grpc::StatusCode::UNAVAILABLE, "gone");
    // Restarted: the worker is unknown here, and a new registration gets the
    // new run's scenario.
    response->set_unknown_worker(true);
    scenario_text_ = restarted_scenario_;
    return grpc::Status::OK;
  }
  // Acts as a server restarted on another scenario from the first heartbeat on.
  void RestartWith(std::string scenario_text) {
    absl::MutexLock lock(&mu_);
    restarted_scenario_ = std::move(scenario_text);
  }
  wire::RegisterRequest registered() {
    absl::MutexLock lock(&mu_);
    return registered_;
  }

 private:
  std::atomic<int> get_task_calls_{0};
  absl::Mutex mu_;
  std::string scenario_text_ ABSL_GUARDED_BY(mu_);
  std::string restarted_scenario_ ABSL_GUARDED_BY(mu_);
  absl::Status refusal_;
  wire::RegisterRequest registered_ ABSL_GUARDED_BY(mu_);
};

class WorkerTest : public ::testing::Test {
 protected:
  void Serve(ScriptedServer* service) {
    grpc::ServerBuilder builder;
    int port = 0;
    builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &port);
    builder.RegisterService(service);
    server_ = builder.BuildAndStart();
    ASSERT_NE(server_, nullptr);
    address_ = "127.0.0.1:" + std::to_string(port);
  }
  void TearDown() override {
    if (server_ != nullptr) server_->Shutdown(GrpcTimeout(absl::Seconds(1)));
  }

  // Runs the worker while moving the clock on by `step` each time all
  // `waiters` of its threads sit in timed waits, until it returns. Sets
  // *elapsed to how far the clock moved. (The short real-time bound on each
  // wait only lets the loop notice that the worker has returned.)
  absl::Status RunOnFakeClock(WorkerOptions wo, int waiters, absl::Duration step,
                              absl::Duration* elapsed) {
    wo.clock = &clock_;
    absl::Status status;
    absl::Notification done;
    std::thread worker([&] {
      status = RunWorker(wo);
      done.Notify();
    });
    const absl::Time t0 = clock_.Now();
    while (!done.HasBeenNotified()) {
      if (clock_.BlockUntilTimedWaiters(waiters, absl::Milliseconds(20))) clock_.Advance(step);
    }
    worker.join();
    *elapsed = clock_.Now() - t0;
    return status;
  }

  FakeClock clock_;
  std::unique_ptr<grpc::Server> server_;
  std::string address_;
};

TEST_F(WorkerTest, ServerGoneMidRunIsUnavailableNamingTheAddressAfterExactlyTheTimeout) {
  ScriptedServer service(TinyScenarioText());
  Serve(&service);
  WorkerOptions wo;
  wo.server = address_;
  wo.server_lost_timeout_s = 0.5;
  absl::Duration elapsed;
  // Both the poller and the heartbeat thread retry every 200 ms; the first
  // retry after more than 0.5 s of silence gives up: at 0.6 s.
  absl::Status status = RunOnFakeClock(wo, 2, absl::Milliseconds(200), &elapsed);
  EXPECT_EQ(status.code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(status.message(), HasSubstr("lost the fedsim server at " + address_));
  EXPECT_EQ(elapsed, absl::Milliseconds(600));
}

// While the server is silent (restarting, say) the worker backs off: each
// retry waits half the silence so far, 0.2 to 2 s, so 20 s of silence cost
// about 17 polls instead of 100, and it still gives up right after the
// timeout.
TEST_F(WorkerTest, RetriesBackOffWhileTheServerIsSilent) {
  ScriptedServer service(TinyScenarioText());
  Serve(&service);
  WorkerOptions wo;
  wo.server = address_;
  wo.server_lost_timeout_s = 20;
  absl::Duration elapsed;
  absl::Status status = RunOnFakeClock(wo, 2, absl::Milliseconds(100), &elapsed);
  EXPECT_EQ(status.code(), absl::StatusCode::kUnavailable);
  EXPECT_GE(elapsed, absl::Seconds(20));
  EXPECT_LE(elapsed, absl::Seconds(22));
  EXPECT_GE(service.get_task_calls(), 10);
  EXPECT_LE(service.get_task_calls(), 25);
}

// A server restarted with another run (not a resume of this one): the
// worker, whose data belongs to the first scenario, stops with a clear error
// instead of training the new run's tasks on the wrong data.
TEST_F(WorkerTest, ServerRestartedOnAnotherScenarioStopsTheWorker) {
  ScriptedServer service(TinyScenarioText());
  service.RestartWith(absl::StrCat(TinyScenarioText(), "seed: 99\n"));
  Serve(&service);
  WorkerOptions wo;
  wo.server = address_;
  absl::Duration elapsed;
  // The clock moves only while both the poller and the heartbeat thread
  // wait: with one waiter, the poller's quick retries could run the clock
  // past the 30 s timeout while the heartbeat's call (which finds the
  // restart) was still on the wire, on a loaded machine.
  absl::Status status = RunOnFakeClock(wo, 2, absl::Milliseconds(200), &elapsed);
  EXPECT_EQ(status.code(), absl::StatusCode::kFailedPrecondition) << status;
  EXPECT_THAT(status.message(), HasSubstr("now runs another scenario"));
}

TEST_F(WorkerTest, RegistersWithThisBuildsIdentityAndReportsARefusal) {
  ScriptedServer service(TinyScenarioText(),
                         absl::FailedPreconditionError("worker w has build id 'x' ..."));
  Serve(&service);
  WorkerOptions wo;
  wo.server = address_;
  wo.name = "w";
  wo.slots = 3;

  wo.clock = &clock_;
  absl::Status status = RunWorker(wo);  // a refusal is final: no retry, no clock
  EXPECT_EQ(status.code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(status.message(), HasSubstr("refused to register this worker: worker w has build"));
  const wire::RegisterRequest sent = service.registered();
  EXPECT_EQ(sent.worker_name(), "w");
  EXPECT_EQ(sent.slots(), 3u);
  EXPECT_EQ(sent.protocol_version(), kProtocolVersion);
  EXPECT_EQ(sent.build_id(), std::string(BuildId()));
  // By default a worker reports this binary's own fingerprint in both modes.
  const std::map<std::string, std::string> own = OwnNumericFingerprints();
  ASSERT_EQ(sent.numeric_fingerprints().size(), 2u);
  EXPECT_EQ(sent.numeric_fingerprints().at("native"), own.at("native"));
  EXPECT_EQ(sent.numeric_fingerprints().at("reproducible"), own.at("reproducible"));
  EXPECT_THAT(own.at("reproducible"), HasSubstr("mode=reproducible"));
}

TEST_F(WorkerTest, NoServerIsAClearErrorAfterTheConnectTimeout) {
  WorkerOptions wo;
  wo.server = "127.0.0.1:1";
  wo.connect_timeout_s = 0.3;
  absl::Duration elapsed;
  // Retries at 0, 0.2 and 0.4 s; the last one is past the timeout.
  absl::Status status = RunOnFakeClock(wo, 1, absl::Milliseconds(200), &elapsed);
  EXPECT_EQ(status.code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(status.message(), HasSubstr("127.0.0.1:1"));
  EXPECT_THAT(status.message(), HasSubstr("within 0.3 s"));
  EXPECT_EQ(elapsed, absl::Milliseconds(400));
}

TEST(WorkerStartTest, BadOptions) {
  WorkerOptions wo;
  EXPECT_EQ(RunWorker(wo).code(), absl::StatusCode::kInvalidArgument);
  wo.server = "127.0.0.1:1";
  wo.slots = 0;
  EXPECT_EQ(RunWorker(wo).code(), absl::StatusCode::kInvalidArgument);
  wo.slots = 1;
  wo.clock = nullptr;
  EXPECT_EQ(RunWorker(wo).code(), absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace fedsim
