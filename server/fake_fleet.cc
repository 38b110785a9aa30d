#include "server/fake_fleet.h"

#include <sys/resource.h>

#include <algorithm>
#include <chrono>
#include <deque>
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>
#include <thread>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "core/clock.h"
#include "core/model_store.h"
#include "rpc/aggregator_client.h"
#include "rpc/wire.h"

namespace fedsim {
namespace {

constexpr ClientId kClients = 64;
constexpr uint64_t kExamples = 10;
const ModelRef kBase = ModelRef::Global(1);

int ThreadCount() {
  std::error_code error;
  int n = 0;
  for (auto it = std::filesystem::directory_iterator("/proc/self/task", error);
       !error && it != std::filesystem::directory_iterator(); it.increment(error)) {
    ++n;
  }
  return n;
}

// Open descriptors of this process that are sockets.
int SocketCount() {
  std::error_code error;
  int n = 0;
  for (auto it = std::filesystem::directory_iterator("/proc/self/fd", error);
       !error && it != std::filesystem::directory_iterator(); it.increment(error)) {
    std::error_code link_error;
    const std::string target = std::filesystem::read_symlink(it->path(), link_error).string();
    if (!link_error && target.rfind("socket:", 0) == 0) ++n;
  }
  return n;
}

// A "VmRSS:  1234 kB" line of /proc/self/status, in MiB.
double StatusMib(const std::string& key) {
  std::ifstream status("/proc/self/status");
  std::string line;
  while (std::getline(status, line)) {
    if (line.rfind(key + ":", 0) == 0) return std::stod(line.substr(key.size() + 1)) / 1024.0;
  }
  return 0;
}

struct FakeWorker {
  std::shared_ptr<grpc::Channel> channel;
  std::unique_ptr<wire::Aggregator::Stub> stub;
  std::unique_ptr<AggregatorClient> client;  // for PushUpdate, on the same channel
  WorkerSession session;
  std::unique_ptr<grpc::ClientContext> context;
  wire::GetTaskRequest request;
  wire::GetTaskResponse response;
};

class Fleet {
 public:
  Fleet(const FakeFleetOptions& options, uint64_t tasks)
      : options_(options), times_leased_(tasks, 0) {}

  absl::Status Connect(const std::string& address) {
    workers_.resize(static_cast<size_t>(options_.workers));
    for (FakeWorker& w : workers_) {
      grpc::ChannelArguments args = WireChannelArguments();
      // A subchannel pool of its own: this channel's connection is not shared.
      args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
      w.channel = grpc::CreateCustomChannel(address, grpc::InsecureChannelCredentials(), args);
      w.stub = wire::Aggregator::NewStub(w.channel);
      w.client = std::make_unique<AggregatorClient>(w.channel);
      absl::StatusOr<wire::RegisterResponse> reg = w.client->Register("fake", 1);
      if (!reg.ok()) return reg.status();
      w.session = WorkerSession::Of(*reg);
      w.request.set_worker_id(w.session.worker_id);
      w.request.set_session(w.session.session);
      w.request.set_max_tasks(1);
      w.request.set_wait_s(3600);  // the server's clock does not move
    }
    return absl::OkStatus();
  }

  void Start() {
    {
      absl::MutexLock lock(&mu_);
      running_ = options_.workers;
    }
    for (int i = 0; i < options_.pusher_threads; ++i) pushers_.emplace_back([this] { PushLoop(); });
    for (FakeWorker& w : workers_) Poll(&w);
  }

  // Waits until every worker heard run_finished (or failed), stops the pushers.
  absl::Status Stop() {
    {
      absl::MutexLock lock(&mu_);
      mu_.Await(absl::Condition(
          +[](Fleet* f) ABSL_EXCLUSIVE_LOCKS_REQUIRED(f->mu_) { return f->running_ == 0; }, this));
      stop_ = true;
    }
    for (std::thread& t : pushers_) t.join();
    absl::MutexLock lock(&mu_);
    return error_;
  }

  std::vector<int> times_leased() {
    absl::MutexLock lock(&mu_);
    return times_leased_;
  }

 private:
  void Poll(FakeWorker* w) {
    w->context = std::make_unique<grpc::ClientContext>();
    w->response.Clear();
    w->stub->async()->GetTask(w->context.get(), &w->request, &w->response,
                              [this, w](grpc::Status status) { Polled(w, status); });
  }

  // On a gRPC callback thread: must not block, so pushing is the pushers'.
  void Polled(FakeWorker* w, const grpc::Status& status) {
    absl::MutexLock lock(&mu_);
    if (!status.ok() || w->response.run_finished()) {
      if (!status.ok() && error_.ok()) error_ = FromGrpcStatus(status);
      --running_;
      return;
    }
    for (const wire::Task& task : w->response.tasks()) {
      if (task.task_id() >= 1 && task.task_id() <= times_leased_.size()) {
        ++times_leased_[task.task_id() - 1];
      }
    }
    ready_.push_back(w);
  }

  void PushLoop() {
    while (true) {
      FakeWorker* w = nullptr;
      {
        absl::MutexLock lock(&mu_);
        mu_.Await(absl::Condition(
            +[](Fleet* f)
                 ABSL_EXCLUSIVE_LOCKS_REQUIRED(f->mu_) { return f->stop_ || !f->ready_.empty(); },
            this));
        if (ready_.empty()) return;
        w = ready_.front();
        ready_.pop_front();
      }
      absl::Status status = PushResults(*w);
      if (!status.ok()) {
        absl::MutexLock lock(&mu_);
        if (error_.ok()) error_ = status;
        --running_;
        continue;
      }
      Poll(w);
    }
  }

  absl::Status PushResults(FakeWorker& w) {
    for (const wire::Task& task : w.response.tasks()) {
      absl::StatusOr<TaskSpec> spec = TaskFromWire(task);
      if (!spec.ok()) return spec.status();
      TaskResult result;
      result.id = spec->id;
      result.client = spec->client;
      result.base = spec->base;
      result.num_examples = kExamples;
      result.delta.assign(options_.num_params, static_cast<float>(spec->id));
      absl::StatusOr<bool> duplicate = w.client->PushUpdate(w.session, result);
      if (!duplicate.ok()) return duplicate.status();
    }
    return absl::OkStatus();
  }

  const FakeFleetOptions options_;
  std::vector<FakeWorker> workers_;
  std::vector<std::thread> pushers_;
  absl::Mutex mu_;
  std::vector<int> times_leased_ ABSL_GUARDED_BY(mu_);
  std::deque<FakeWorker*> ready_ ABSL_GUARDED_BY(mu_);  // polled, with tasks to push
  int running_ ABSL_GUARDED_BY(mu_) = 0;                // workers still polling
  bool stop_ ABSL_GUARDED_BY(mu_) = false;
  absl::Status error_ ABSL_GUARDED_BY(mu_);
};

// Samples the process's thread count until stopped.
class ThreadSampler {
 public:
  ThreadSampler() : thread_([this] { Loop(); }) {}
  ~ThreadSampler() { Stop(); }
  int Stop() {
    if (!done_.HasBeenNotified()) done_.Notify();
    if (thread_.joinable()) thread_.join();
    return peak_;
  }

 private:
  void Loop() {
    do {
      peak_ = std::max(peak_, ThreadCount());
    } while (!done_.WaitForNotificationWithTimeout(absl::Milliseconds(10)));
  }
  absl::Notification done_;
  int peak_ = 0;
  std::thread thread_;
};

}  // namespace

uint64_t RaiseOpenFileLimit() {
  rlimit limit{};
  if (getrlimit(RLIMIT_NOFILE, &limit) != 0) return 0;
  if (limit.rlim_cur < limit.rlim_max) {
    limit.rlim_cur = limit.rlim_max;
    setrlimit(RLIMIT_NOFILE, &limit);
    getrlimit(RLIMIT_NOFILE, &limit);
  }
  return limit.rlim_cur;
}

absl::StatusOr<FakeFleetReport> RunFakeFleet(const FakeFleetOptions& options) {
  FakeFleetReport report;
  report.workers = options.workers;
  report.tasks = static_cast<uint64_t>(options.workers) * options.tasks_per_worker;
  report.threads_before = ThreadCount();
  report.rss_before_mib = StatusMib("VmRSS");
  ThreadSampler sampler;

  FakeClock clock;
  ModelStore store;
  store.Put(kBase, std::make_shared<std::vector<float>>(options.num_params, 0.5f));
  GrpcServerOptions server;
  server.clock = &clock;
  server.shutdown_grace_s = 1;
  server.client_examples.assign(kClients, kExamples);
  absl::StatusOr<std::unique_ptr<GrpcTransport>> transport =
      StartGrpcTransport(server, "name: \"fleet\"", options.num_params, &store);
  if (!transport.ok()) return transport.status();
  // However this function returns: a worker the fleet stopped before it
  // polled again never hears that the run finished, so the transport waits
  // out its shutdown grace, which on this fake clock passes only when the
  // clock is moved. (Destroyed after the fleet, before the transport.)
  struct EndGrace {
    GrpcTransport* transport;
    FakeClock* clock;
    double grace_s;
    ~EndGrace() {
      transport->Shutdown();
      clock->Advance(absl::Seconds(grace_s + 1));
    }
  } end_grace{transport->get(), &clock, server.shutdown_grace_s};

  Fleet fleet(options, report.tasks);
  absl::Status status = fleet.Connect((*transport)->address());
  if (!status.ok()) return status;
  fleet.Start();
  const absl::Time give_up = absl::Now() + absl::Seconds(options.park_timeout_s);
  while ((*transport)->stats().polls_parked < static_cast<uint64_t>(options.workers)) {
    if (absl::Now() >= give_up) {
      (*transport)->Shutdown();
      fleet.Stop().IgnoreError();
      return absl::DeadlineExceededError(
          absl::StrCat("only ", (*transport)->stats().polls_parked, " of ", options.workers,
                       " long polls parked after ", options.park_timeout_s, " s"));
    }
    absl::SleepFor(absl::Milliseconds(1));
  }
  report.polls_parked = (*transport)->stats().polls_parked;
  report.threads_parked = ThreadCount();
  report.sockets_parked = SocketCount();
  report.rss_parked_mib = StatusMib("VmRSS");

  const absl::Time start = absl::Now();
  for (TaskId id = 1; id <= report.tasks; ++id) {
    TaskSpec spec;
    spec.id = id;
    spec.client = static_cast<ClientId>(id % kClients);
    spec.base = kBase;
    spec.seed = id;
    (*transport)->Submit(spec);
  }
  for (TaskId id = 1; id <= report.tasks; ++id) {
    absl::StatusOr<TaskResult> result = (*transport)->Await(id);
    if (!result.ok()) {
      status = result.status();
      break;
    }
  }
  report.wall_s = absl::ToDoubleSeconds(absl::Now() - start);
  (*transport)->Shutdown();
  absl::Status workers = fleet.Stop();
  if (status.ok()) status = workers;
  report.stats = (*transport)->stats();
  report.threads_peak = sampler.Stop();
  report.rss_peak_mib = StatusMib("VmHWM");
  report.times_leased = fleet.times_leased();
  if (!status.ok()) return status;
  return report;
}

}  // namespace fedsim
