// The worker process's loop (client/) against the real gRPC server
// (server/), both on one FakeClock: bit-identical results, and a dead
// worker's task redone by another at exactly the heartbeat timeout; the same
// over local links (rpc/local_link.h), whose closing drops a worker at once.
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iterator>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "client/worker.h"
#include "config/scenario_file.h"
#include "core/clock.h"
#include "gtest/gtest.h"
#include "rpc/aggregator_client.h"
#include "runtime/model_setup.h"
#include "runtime/run_setup.h"
#include "runtime/task_runner.h"
#include "server/grpc_transport.h"

namespace fedsim {
namespace {

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

const ModelRef kBase = ModelRef::Global(0);

class WorkerServerTest : public ::testing::Test {
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
    store_.Put(kBase, params);
    runner_ = std::make_unique<TaskRunner>(data_.get());
  }

  void StartServer(GrpcServerOptions options) {
    // The identity a worker of this binary reports (it must match).
    options.numeric_fingerprint = OwnNumericFingerprints()[options.numeric_mode];
    options.clock = &clock_;
    // The server's own n_i, as `fedsim server` gives it.
    for (uint32_t rows : data_->client_rows) options.client_examples.push_back(rows);
    auto t =
        StartGrpcTransport(options, ScenarioToText(scenario_), store_.Get(kBase)->size(), &store_);
    ASSERT_TRUE(t.ok()) << t.status();
    transport_ = std::move(t).value();
  }

  WorkerOptions Worker(int slots) {
    WorkerOptions wo;
    wo.server = transport_->address();
    wo.slots = slots;
    wo.clock = &clock_;
    return wo;
  }

  // Makes `wo`'s worker call over a local link that the server serves.
  void Link(WorkerOptions* wo) {
    int fds[2] = {-1, -1};
    ASSERT_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds), 0);
    transport_->ServeLink(fds[0], "test-link");
    wo->server_link_fd = fds[1];
  }

  TaskSpec Task(TaskId id, ClientId client) {
    TaskSpec spec;
    spec.id = id;
    spec.client = client;
    spec.base = kBase;
    spec.seed = 100 + id;
    spec.local = scenario_.local();
    return spec;
  }

  // The result the in-process path computes for `spec`.
  TaskResult Expected(const TaskSpec& spec) {
    auto r = runner_->Run(spec, *store_.Get(kBase));
    EXPECT_TRUE(r.ok()) << r.status();
    return r.ok() ? *r : TaskResult();
  }

  FakeClock clock_;
  config::Scenario scenario_;
  std::unique_ptr<RunData> data_;
  std::unique_ptr<TaskRunner> runner_;
  ModelStore store_;
  std::unique_ptr<GrpcTransport> transport_;
};

TEST_F(WorkerServerTest, TrainsTasksBitIdenticallyAndExitsWhenTheRunEnds) {
  GrpcServerOptions options;
  options.heartbeat_interval_s = 0.1;
  StartServer(options);
  WorkerOptions wo = Worker(3);
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
    EXPECT_EQ(got->base, kBase);
    EXPECT_EQ(got->num_examples, want.num_examples);
    EXPECT_EQ(got->delta, want.delta) << "task " << t.id;
    EXPECT_EQ(got->metrics, want.metrics);
  }
  transport_->Shutdown();
  worker.join();
  EXPECT_TRUE(worker_status.ok()) << worker_status;
  EXPECT_EQ(summary.tasks_done, 8u);
  EXPECT_EQ(summary.models_fetched, 1u);  // one model, fetched once for 8 tasks
  EXPECT_EQ(summary.bytes_fetched, store_.Get(kBase)->size() * sizeof(float));
  EXPECT_EQ(summary.bytes_pushed, 8 * store_.Get(kBase)->size() * sizeof(float));
}

// A worker forked by `fedsim run` trains from the data already in memory,
// and takes the scenario as already parsed, but only when the server hands
// out exactly the scenario that data was built from; otherwise it parses
// that and loads its own. Either way the results are the in-process path's.
TEST_F(WorkerServerTest, PreloadedDataIsUsedOnlyForTheScenarioItWasBuiltFrom) {
  for (const bool same : {true, false}) {
    GrpcServerOptions options;
    options.heartbeat_interval_s = 0.1;
    StartServer(options);
    char* text = nullptr;
    size_t size = 0;
    FILE* log = open_memstream(&text, &size);
    ASSERT_NE(log, nullptr);
    WorkerOptions wo = Worker(2);
    wo.log = log;
    wo.preloaded_data = data_.get();
    wo.preloaded_scenario_text =
        same ? ScenarioToText(scenario_) : ScenarioToText(scenario_) + "\nseed: 7\n";
    // A probe: the worker takes the caller's parse at its word, so its
    // name shows in the log line only when the worker used it.
    config::Scenario parsed = scenario_;
    parsed.set_name("parsed-by-the-caller");
    wo.preloaded_scenario = &parsed;
    absl::Status worker_status;
    std::thread worker([&] { worker_status = RunWorker(wo); });
    std::vector<TaskSpec> tasks;
    for (TaskId id = 1; id <= 3; ++id) tasks.push_back(Task(id, static_cast<ClientId>(id + 4)));
    for (const TaskSpec& t : tasks) transport_->Submit(t);
    for (const TaskSpec& t : tasks) {
      auto got = transport_->Await(t.id);
      ASSERT_TRUE(got.ok()) << got.status();
      EXPECT_EQ(got->delta, Expected(t).delta) << "task " << t.id << (same ? "" : " (own data)");
    }
    transport_->Shutdown();
    worker.join();
    EXPECT_TRUE(worker_status.ok()) << worker_status;
    std::fclose(log);
    const std::string logged(text, size);
    std::free(text);
    EXPECT_NE(logged.find("fedsim client: connected to"), std::string::npos) << logged;
    EXPECT_EQ(logged.find("data shared with the process that forked it") != std::string::npos, same)
        << logged;
    EXPECT_EQ(logged.find("scenario 'parsed-by-the-caller'") != std::string::npos, same) << logged;
    EXPECT_NE(logged.find(absl::StrCat("scenario '", scenario_.name(), "'")) != std::string::npos,
              same)
        << logged;
  }
}

// A worker that leased a task and went silent (as if SIGKILLed): while a live
// worker heartbeats every 50 ms, the dead one's task is re-leased to it at
// exactly the 0.5 s heartbeat timeout, with the same result.
TEST_F(WorkerServerTest, TaskOfADeadWorkerIsRedoneByAnotherAtTheTimeout) {
  GrpcServerOptions options;
  options.heartbeat_interval_s = 0.05;
  options.heartbeat_timeout_s = 0.5;
  StartServer(options);
  AggregatorClient dead(NewWireChannel(transport_->address()));
  WorkerIdentity me;
  me.name = "dead";
  me.slots = 1;
  me.numeric_fingerprints = OwnNumericFingerprints();
  auto reg = dead.Register(me);
  ASSERT_TRUE(reg.ok());
  TaskSpec spec = Task(1, 5);
  transport_->Submit(spec);
  auto lease = dead.GetTask(WorkerSession::Of(*reg), 1, 0);
  ASSERT_TRUE(lease.ok());
  ASSERT_EQ(lease->tasks_size(), 1);

  absl::Status worker_status;
  std::thread worker([&] { worker_status = RunWorker(Worker(1)); });
  // Timed waiters: the server's reaper, the live worker's heartbeat loop and
  // its long poll on the server.
  constexpr int kWaiters = 3;
  ASSERT_TRUE(clock_.BlockUntilTimedWaiters(kWaiters));
  for (int beat = 1; beat < 10; ++beat) {  // up to 0.45 s
    clock_.Advance(absl::Milliseconds(50));
    ASSERT_TRUE(clock_.BlockUntilTimedWaiters(kWaiters));  // the heartbeat went out
  }
  EXPECT_EQ(transport_->stats().tasks_requeued, 0u);
  EXPECT_EQ(transport_->stats().workers_connected, 2u);
  clock_.Advance(absl::Milliseconds(50));  // 0.5 s: the dead worker expires
  auto got = transport_->Await(1);
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(got->delta, Expected(spec).delta);
  const GrpcTransportStats stats = transport_->stats();
  EXPECT_EQ(stats.tasks_requeued, 1u);
  EXPECT_EQ(stats.workers_dropped, 1u);
  EXPECT_EQ(stats.workers_connected, 1u);
  transport_->Shutdown();
  worker.join();
  EXPECT_TRUE(worker_status.ok()) << worker_status;
}

// Tasks of a fold group (TaskSpec::fold_group): the worker adds their
// weighted deltas into exact sums, each of two tasks or more, and a batch of
// one goes as a plain update. Every sum equals the one made from the
// in-process deltas, bit for bit.
// A worker whose poll brought fewer tasks than it asked for (the server had
// no more) polls again only once fewer of the batch's tasks are untrained
// than it has slots: a poll sent at once would park until the next round,
// waking the server's threads while the slots train. Wall-clock emulation
// on the fake clock holds each task at the end of its training.
TEST_F(WorkerServerTest, AWorkerWhosePollCameBackShortPollsAgainOnceItsBatchIsTrained) {
  scenario_.mutable_clock()->set_mode(config::Clock::WALL);
  scenario_.mutable_clock()->set_time_scale(1.0);
  GrpcServerOptions options;
  options.heartbeat_timeout_s = 60;  // fake seconds; the test moves 3
  StartServer(options);
  const std::string log_path =
      ::testing::TempDir() + "/worker_poll_" + std::to_string(getpid()) + ".log";
  FILE* task_log = std::fopen(log_path.c_str(), "w");
  ASSERT_NE(task_log, nullptr);
  WorkerOptions wo = Worker(1);
  wo.task_log = task_log;
  Link(&wo);
  WorkerSummary summary;
  absl::Status worker_status;
  std::thread worker([&] { worker_status = RunWorker(wo, &summary); });

  std::vector<TaskSpec> tasks;
  for (TaskId id = 1; id <= 3; ++id) {
    TaskSpec t = Task(id, static_cast<ClientId>(id));
    t.fold_group = 1;
    t.fold_weight = 1.0;
    t.duration_s = 1.0;
    tasks.push_back(t);
  }
  transport_->BeginBatch();
  for (const TaskSpec& t : tasks) transport_->Submit(t);
  transport_->EndBatch();
  // The worker asks for one task (it knows of no fold group yet), then for
  // a batch's worth, and gets the other two.
  auto logged = [&](const std::string& what) {
    std::ifstream in(log_path);
    std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    return text.find(what) != std::string::npos;
  };
  const absl::Time give_up = absl::Now() + absl::Seconds(20);
  while (!logged("task 1 (client 1, from global@0): training") && absl::Now() < give_up) {
    absl::SleepFor(absl::Milliseconds(5));
  }
  for (int done = 0; done < 3; ++done) {
    // Task done+1 sleeps at the end of its training; its batch holds it.
    absl::SleepFor(absl::Milliseconds(100));
    EXPECT_EQ(transport_->stats().polls_parked, 0u) << done << " tasks trained";
    clock_.Advance(absl::Seconds(1));
  }
  // The batch is trained (and pushed): the next poll parks for the next
  // round.
  while (transport_->stats().polls_parked == 0 && absl::Now() < give_up) {
    absl::SleepFor(absl::Milliseconds(5));
  }
  EXPECT_EQ(transport_->stats().polls_parked, 1u);
  for (const TaskSpec& t : tasks) {
    auto got = transport_->Await(t.id);
    ASSERT_TRUE(got.ok()) << got.status();
    EXPECT_NE(got->folded, nullptr) << t.id;
  }
  transport_->Shutdown();
  worker.join();
  std::fclose(task_log);
  std::remove(log_path.c_str());
  EXPECT_TRUE(worker_status.ok()) << worker_status;
  EXPECT_EQ(summary.tasks_done, 3u);
  EXPECT_EQ(summary.sums_pushed, 1u);
}

TEST_F(WorkerServerTest, FoldGroupsComeAsExactSumsOfTwoOrMoreOrAsPlainUpdates) {
  GrpcServerOptions options;
  options.heartbeat_interval_s = 0.1;
  StartServer(options);
  WorkerSummary summary;
  absl::Status worker_status;
  WorkerOptions wo = Worker(1);
  std::thread worker([&] { worker_status = RunWorker(wo, &summary); });

  auto fold = [&](TaskId id, uint64_t group, double weight) {
    TaskSpec t = Task(id, static_cast<ClientId>(id % 12));
    t.fold_group = group;
    t.fold_weight = weight;
    return t;
  };
  // A group of one task: its delta comes on its own.
  const TaskSpec alone = fold(1, 1, 0.75);
  transport_->Submit(alone);
  auto got = transport_->Await(alone.id);
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(got->folded, nullptr);
  EXPECT_EQ(got->delta, Expected(alone).delta);

  // A group of six with different weights.
  std::vector<TaskSpec> tasks;
  for (TaskId id = 2; id <= 7; ++id) tasks.push_back(fold(id, 2, 0.5 + 0.25 * id));
  // In one batch, as the engine submits a round: a parked poll answered at
  // the first Submit would lease that task alone, and on a busy machine it
  // could be trained and pushed before the next is submitted.
  transport_->BeginBatch();
  for (const TaskSpec& t : tasks) transport_->Submit(t);
  transport_->EndBatch();
  std::map<std::shared_ptr<const FoldedSum>, std::vector<TaskId>> sums;
  size_t plain = 0;
  for (const TaskSpec& t : tasks) {
    auto r = transport_->Await(t.id);
    ASSERT_TRUE(r.ok()) << r.status();
    EXPECT_EQ(r->metrics, Expected(t).metrics);
    if (r->folded == nullptr) {
      ++plain;
      EXPECT_EQ(r->delta, Expected(t).delta) << "task " << t.id;
    } else {
      EXPECT_TRUE(r->delta.empty());
      sums[r->folded].push_back(t.id);
    }
  }
  // The six are leased together (a worker holds at least 8 per slot of a
  // fold group: LeaseDepth::FoldDepth).
  EXPECT_FALSE(sums.empty());
  for (const auto& [sum, ids] : sums) {
    EXPECT_EQ(sum->tasks, ids);
    EXPECT_GE(ids.size(), 2u);
    ExactSum want(store_.Get(kBase)->size());
    for (TaskId id : ids)
      ASSERT_TRUE(want.Add(0.5 + 0.25 * id, Expected(Task(id, id % 12)).delta).ok());
    EXPECT_TRUE(std::ranges::equal(sum->values(), want.values()));
  }
  transport_->Shutdown();
  worker.join();
  EXPECT_TRUE(worker_status.ok()) << worker_status;
  EXPECT_EQ(summary.tasks_done, 7u);
  EXPECT_EQ(summary.tasks_folded, 6u - plain);
  EXPECT_EQ(summary.sums_pushed, sums.size());
}

// Over a local link, with the server's shared memory on or off: plain
// tasks come back with the in-process deltas, a fold group's as the exact
// sum of them, bit for bit; tensors go through shared memory only when the
// server offers it. A server without a gRPC listener (`fedsim run` with all
// its workers on links) serves a link just the same.
TEST_F(WorkerServerTest, OverALocalLinkResultsAreBitIdenticalWithOrWithoutSharedMemory) {
  struct Mode {
    bool shm;
    bool listen;
  };
  for (const Mode mode : {Mode{true, true}, Mode{false, true}, Mode{true, false}}) {
    const bool shm = mode.shm;
    GrpcServerOptions options;
    options.heartbeat_interval_s = 0.1;
    options.shared_memory_updates = shm;
    if (!mode.listen) options.listen_address = "";
    StartServer(options);
    if (!mode.listen) {
      EXPECT_EQ(transport_->address(), "");
      EXPECT_EQ(transport_->port(), 0);
      EXPECT_EQ(transport_->InProcessChannel(), nullptr);
    }
    WorkerOptions wo = Worker(2);
    Link(&wo);
    wo.server = "test-server";
    WorkerSummary summary;
    absl::Status worker_status;
    std::thread worker([&] { worker_status = RunWorker(wo, &summary); });
    std::vector<TaskSpec> plain;
    for (TaskId id = 1; id <= 4; ++id) plain.push_back(Task(id, static_cast<ClientId>(id)));
    for (const TaskSpec& t : plain) transport_->Submit(t);
    for (const TaskSpec& t : plain) {
      auto got = transport_->Await(t.id);
      ASSERT_TRUE(got.ok()) << got.status();
      EXPECT_EQ(got->delta, Expected(t).delta)
          << "task " << t.id << (shm ? "" : " (no shm)") << (mode.listen ? "" : " (no listener)");
      EXPECT_EQ(got->metrics, Expected(t).metrics);
    }
    std::vector<TaskSpec> folded;
    for (TaskId id = 5; id <= 10; ++id) {
      TaskSpec t = Task(id, static_cast<ClientId>(id));
      t.fold_group = 1;
      t.fold_weight = 0.25 * static_cast<double>(id);
      folded.push_back(t);
    }
    transport_->BeginBatch();  // leased together (see FoldGroupsComeAs...)
    for (const TaskSpec& t : folded) transport_->Submit(t);
    transport_->EndBatch();
    for (const TaskSpec& t : folded) {
      auto got = transport_->Await(t.id);
      ASSERT_TRUE(got.ok()) << got.status();
      if (got->folded == nullptr) {
        EXPECT_EQ(got->delta, Expected(t).delta) << "task " << t.id;
        continue;
      }
      ExactSum want(store_.Get(kBase)->size());
      for (TaskId id : got->folded->tasks) {
        ASSERT_TRUE(want.Add(0.25 * static_cast<double>(id), Expected(Task(id, id)).delta).ok());
      }
      EXPECT_TRUE(std::ranges::equal(got->folded->values(), want.values()))
          << "task " << t.id << (shm ? "" : " (no shm)") << (mode.listen ? "" : " (no listener)");
    }
    transport_->Shutdown();
    worker.join();
    EXPECT_TRUE(worker_status.ok()) << worker_status;
    EXPECT_EQ(summary.tasks_done, 10u);
    EXPECT_GE(summary.sums_pushed, 1u);
    EXPECT_EQ(summary.bytes_fetched, store_.Get(kBase)->size() * sizeof(float));
    EXPECT_EQ(summary.bytes_fetched_shared, shm ? summary.bytes_fetched : 0u);
    EXPECT_EQ(summary.bytes_shared, shm ? summary.bytes_pushed : 0u);
    EXPECT_GT(summary.bytes_pushed, 0u);
    transport_.reset();
  }
}

// A worker process that ends closes its link: the server drops it and puts
// its leased task back in the queue at once, without waiting for its
// heartbeats to stop (the fake clock never reaches the heartbeat timeout
// here). A worker on another link then trains the task.
TEST_F(WorkerServerTest, AWorkerWhoseLinkClosesIsDroppedAtOnce) {
  GrpcServerOptions options;
  options.heartbeat_interval_s = 0.1;
  StartServer(options);
  TaskSpec spec = Task(1, 5);
  transport_->Submit(spec);
  {
    int fds[2] = {-1, -1};
    ASSERT_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds), 0);
    transport_->ServeLink(fds[0], "doomed");
    AggregatorClient doomed(std::make_shared<LinkClient>(fds[1]));
    WorkerIdentity me;
    me.name = "doomed";
    me.numeric_fingerprints = OwnNumericFingerprints();
    auto reg = doomed.Register(me);
    ASSERT_TRUE(reg.ok()) << reg.status();
    EXPECT_TRUE(reg->shared_memory_updates());  // a link is on this machine
    auto lease = doomed.GetTask(WorkerSession::Of(*reg), 1, 0);
    ASSERT_TRUE(lease.ok()) << lease.status();
    ASSERT_EQ(lease->tasks_size(), 1);
    EXPECT_EQ(transport_->stats().workers_connected, 1u);
  }  // the link closes with the client
  const absl::Time give_up = absl::Now() + absl::Seconds(10);
  while (transport_->stats().workers_dropped == 0 && absl::Now() < give_up) {
    absl::SleepFor(absl::Milliseconds(2));
  }
  GrpcTransportStats stats = transport_->stats();
  EXPECT_EQ(stats.workers_dropped, 1u);
  EXPECT_EQ(stats.tasks_requeued, 1u);
  EXPECT_EQ(stats.workers_connected, 0u);

  WorkerOptions wo = Worker(1);
  Link(&wo);
  absl::Status worker_status;
  std::thread worker([&] { worker_status = RunWorker(wo); });
  auto got = transport_->Await(spec.id);
  ASSERT_TRUE(got.ok()) << got.status();
  EXPECT_EQ(got->delta, Expected(spec).delta);
  transport_->Shutdown();
  worker.join();
  EXPECT_TRUE(worker_status.ok()) << worker_status;
}

// A worker whose link is closed from the start (the process that forked it
// is gone) stops with Unavailable at once. Over gRPC it would retry until
// connect_timeout_s, which the fake clock never reaches.
TEST_F(WorkerServerTest, AWorkerStopsAtOnceWhenItsLinkIsClosed) {
  int fds[2] = {-1, -1};
  ASSERT_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds), 0);
  close(fds[0]);
  WorkerOptions wo;
  wo.server = "the parent";
  wo.server_link_fd = fds[1];
  wo.clock = &clock_;
  absl::Status status = RunWorker(wo);
  EXPECT_TRUE(absl::IsUnavailable(status)) << status;
  EXPECT_NE(status.message().find("the server (the parent) is gone"), std::string::npos) << status;
}

}  // namespace
}  // namespace fedsim
