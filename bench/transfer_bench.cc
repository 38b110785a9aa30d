// P4 (BENCHMARKS.md): model transfer over gRPC on loopback, MB/s, for a
// 0.8 MB and a 5 MB model, FetchModel (server -> worker) and PushUpdate
// (worker -> server, validation and fingerprint included) through the socket
// and, as same-machine workers push and fetch, through shared memory
// (rpc/shm_segment.h), over gRPC and over a local link (rpc/local_link.h,
// how `fedsim run`'s forked workers call). Two references: memcpy of the same bytes, and a bare
// loopback TCP socket that receives them in place (the socket's ceiling for
// any protocol). Each repetition runs all of them back to back (alternated,
// so machine noise hits them alike); figures are the median and min..max
// over repetitions.
//
//   transfer_bench [--reps=N]
//   P4_MALLOC_DEFAULTS=1 transfer_bench   # glibc's allocator defaults, for comparison
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "rpc/aggregator_client.h"
#include "server/grpc_transport.h"
#include "util/allocator.h"

namespace fedsim {
namespace {

using Clock = std::chrono::steady_clock;

struct Figures {
  std::vector<double> mb_per_s;
  double Median() const {
    std::vector<double> v = mb_per_s;
    std::sort(v.begin(), v.end());
    size_t n = v.size();
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
  }
  double Min() const { return *std::min_element(mb_per_s.begin(), mb_per_s.end()); }
  double Max() const { return *std::max_element(mb_per_s.begin(), mb_per_s.end()); }
};

double MbPerS(size_t bytes, Clock::duration d) {
  return bytes / 1e6 / std::chrono::duration<double>(d).count();
}

// The socket's own ceiling: a bare TCP connection on loopback whose far end
// answers each one-byte request with `bytes` bytes, received straight into
// the caller's buffer. That is the kernel's two copies and nothing else, so
// it bounds what any protocol over the socket (gRPC's HTTP/2 here) can do.
class LoopbackSocket {
 public:
  explicit LoopbackSocket(const std::vector<char>& payload) : payload_(payload) {
    const int listener = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof addr;
    if (listener < 0 || bind(listener, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
        listen(listener, 1) != 0 ||
        getsockname(listener, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
      if (listener >= 0) close(listener);
      return;
    }
    // Connect first: the connection waits in the listener's backlog, so the
    // accept below cannot block, and a failure leaves no thread behind.
    fd_ = socket(AF_INET, SOCK_STREAM, 0);
    if (fd_ >= 0 && connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
      close(fd_);
      fd_ = -1;
    }
    const int served = fd_ >= 0 ? accept(listener, nullptr, nullptr) : -1;
    close(listener);
    if (served < 0) {
      if (fd_ >= 0) close(fd_);
      fd_ = -1;
      return;
    }
    NoDelay(fd_);
    NoDelay(served);
    server_ = std::thread([this, served] {
      char request = 0;
      while (RecvAll(served, &request, 1) && request == 'g') {
        if (!SendAll(served, payload_.data(), payload_.size())) break;
      }
      close(served);
    });
  }
  ~LoopbackSocket() {
    if (fd_ >= 0) {
      SendAll(fd_, "q", 1);
      close(fd_);
    }
    if (server_.joinable()) server_.join();
  }
  bool ok() const { return fd_ >= 0; }
  // One request and its answer, into `out` (payload-sized).
  bool Fetch(char* out) { return SendAll(fd_, "g", 1) && RecvAll(fd_, out, payload_.size()); }

 private:
  static void NoDelay(int fd) {
    const int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  }
  static bool SendAll(int fd, const char* p, size_t n) {
    while (n > 0) {
      const ssize_t sent = send(fd, p, n, MSG_NOSIGNAL);
      if (sent <= 0) return false;
      p += sent;
      n -= static_cast<size_t>(sent);
    }
    return true;
  }
  static bool RecvAll(int fd, char* p, size_t n) {
    while (n > 0) {
      const ssize_t got = recv(fd, p, n, 0);
      if (got <= 0) return false;
      p += got;
      n -= static_cast<size_t>(got);
    }
    return true;
  }

  const std::vector<char>& payload_;
  std::thread server_;
  int fd_ = -1;
};

// Registers `client` as worker `name` and turns on its shared-memory
// segments; nullopt (after printing `refused`) when the server offers none.
std::optional<WorkerSession> RegisterShared(AggregatorClient* client, const char* name,
                                            size_t num_floats, const char* refused) {
  auto reg = client->Register(name, 1);
  if (!reg.ok() || !reg->shared_memory_updates()) {
    std::fprintf(stderr, "%s\n", refused);
    return std::nullopt;
  }
  client->UseSharedMemory(num_floats, 1, [](const absl::Status& why) {
    std::fprintf(stderr, "no shared memory: %s\n", why.ToString().c_str());
  });
  return WorkerSession::Of(*reg);
}

// One task for `worker`: leases it, times its PushUpdate (with `result`
// under the task's id) and then a FetchModel of the model, adding both to
// the figures when `keep`. false, after printing why (`what` names the
// path), when a step fails.
bool TimePushThenFetch(GrpcTransport* transport, AggregatorClient* client,
                       const WorkerSession& worker, const TaskSpec& spec, TaskResult* result,
                       size_t num_floats, const char* what, bool keep, Figures* push,
                       Figures* fetch) {
  transport->Submit(spec);
  auto lease = client->GetTask(worker, 1, 1.0);
  if (!lease.ok() || lease->tasks_size() != 1) {
    std::fprintf(stderr, "lease failed\n");
    return false;
  }
  result->id = spec.id;
  const size_t bytes = num_floats * sizeof(float);
  auto t0 = Clock::now();
  auto pushed = client->PushUpdate(worker, *result);
  auto t1 = Clock::now();
  if (!pushed.ok()) {
    std::fprintf(stderr, "%s push failed: %s\n", what, pushed.status().ToString().c_str());
    return false;
  }
  if (!transport->Await(spec.id).ok()) return false;
  auto t2 = Clock::now();
  auto fetched = client->FetchModel(worker, spec.base);
  auto t3 = Clock::now();
  if (!fetched.ok() || fetched->size() != num_floats) {
    std::fprintf(stderr, "%s fetch failed: %s\n", what, fetched.status().ToString().c_str());
    return false;
  }
  if (keep) {
    push->mb_per_s.push_back(MbPerS(bytes, t1 - t0));
    fetch->mb_per_s.push_back(MbPerS(bytes, t3 - t2));
  }
  return true;
}

int Bench(size_t num_floats, int reps) {
  const size_t bytes = num_floats * sizeof(float);
  ModelStore store;
  auto model = std::make_shared<std::vector<float>>(num_floats);
  for (size_t i = 0; i < num_floats; ++i) (*model)[i] = 1e-3f * static_cast<float>(i % 1000);
  store.Put(ModelRef::Global(1), model);
  GrpcServerOptions options;
  options.shutdown_grace_s = 0.1;
  options.client_examples = {1};  // n_i of client 0, the only one
  auto transport = StartGrpcTransport(options, "", num_floats, &store);
  if (!transport.ok()) {
    std::fprintf(stderr, "%s\n", transport.status().ToString().c_str());
    return 1;
  }
  AggregatorClient client(NewWireChannel((*transport)->address()));
  auto reg = client.Register("bench", 1);
  if (!reg.ok()) {
    std::fprintf(stderr, "%s\n", reg.status().ToString().c_str());
    return 1;
  }
  const WorkerSession worker = WorkerSession::Of(*reg);
  // A second worker that pushes through shared memory, as fedsim's workers
  // on the server's machine do.
  AggregatorClient shm_client(NewWireChannel((*transport)->address()));
  const std::optional<WorkerSession> shm_worker = RegisterShared(
      &shm_client, "bench-shm", num_floats, "the server did not offer shared memory");
  if (!shm_worker.has_value()) return 1;
  // A third that calls over a local link, also through shared memory.
  int pair[2] = {-1, -1};
  if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, pair) != 0) {
    std::fprintf(stderr, "socketpair: %s\n", std::strerror(errno));
    return 1;
  }
  (*transport)->ServeLink(pair[0], "bench-link");
  AggregatorClient link_client(std::make_shared<LinkClient>(pair[1]));
  const std::optional<WorkerSession> link_worker = RegisterShared(
      &link_client, "bench-link", num_floats, "the link worker was not offered shared memory");
  if (!link_worker.has_value()) return 1;

  TaskResult result;
  result.client = 0;
  result.base = ModelRef::Global(1);
  result.num_examples = 1;
  result.delta = *model;
  std::vector<float> dst(num_floats);
  const std::vector<char> payload(bytes, 1);
  LoopbackSocket raw(payload);
  if (!raw.ok()) {
    std::fprintf(stderr, "cannot open a loopback TCP connection\n");
    return 1;
  }
  Figures copy, fetch, push, shm_push, shm_fetch, link_push, link_fetch, socket_fetch;
  for (int rep = -2; rep < reps; ++rep) {  // two warm-up repetitions
    auto t_raw = Clock::now();
    if (!raw.Fetch(reinterpret_cast<char*>(dst.data()))) {
      std::fprintf(stderr, "the bare socket failed\n");
      return 1;
    }
    auto t0 = Clock::now();
    std::memcpy(dst.data(), model->data(), bytes);
    auto t1 = Clock::now();
    asm volatile("" : : "r"(dst.data()) : "memory");

    auto fetched = client.FetchModel(worker, ModelRef::Global(1));
    auto t2 = Clock::now();
    if (!fetched.ok() || fetched->size() != num_floats) {
      std::fprintf(stderr, "fetch failed: %s\n", fetched.status().ToString().c_str());
      return 1;
    }

    TaskSpec spec;
    spec.id = static_cast<TaskId>(rep + 10);
    spec.base = ModelRef::Global(1);
    (*transport)->Submit(spec);
    auto lease = client.GetTask(worker, 1, 1.0);
    if (!lease.ok() || lease->tasks_size() != 1) {
      std::fprintf(stderr, "lease failed\n");
      return 1;
    }
    result.id = spec.id;
    result.delta[0] = static_cast<float>(rep);  // every push differs
    // Shared with gRPC, as the worker pushes: the delta is not copied.
    auto shared = std::make_shared<const TaskResult>(result);
    auto t3 = Clock::now();
    auto pushed = client.PushUpdateAndLease(worker, shared, 0);
    auto t4 = Clock::now();
    if (!pushed.ok()) {
      std::fprintf(stderr, "push failed: %s\n", pushed.status().ToString().c_str());
      return 1;
    }
    if (!(*transport)->Await(spec.id).ok()) return 1;

    const bool keep = rep >= 0;
    spec.id += 1000;
    if (!TimePushThenFetch(transport->get(), &shm_client, *shm_worker, spec, &result, num_floats,
                           "shared-memory", keep, &shm_push, &shm_fetch)) {
      return 1;
    }
    spec.id += 1000;
    if (!TimePushThenFetch(transport->get(), &link_client, *link_worker, spec, &result, num_floats,
                           "local-link", keep, &link_push, &link_fetch)) {
      return 1;
    }
    if (!keep) continue;
    socket_fetch.mb_per_s.push_back(MbPerS(bytes, t0 - t_raw));
    copy.mb_per_s.push_back(MbPerS(bytes, t1 - t0));
    fetch.mb_per_s.push_back(MbPerS(bytes, t2 - t1));
    push.mb_per_s.push_back(MbPerS(bytes, t4 - t3));
  }
  auto line = [&](const char* what, const Figures& f) {
    std::printf(
        "P4 %-5s %5.2f MB: %7.0f MB/s (min..max %.0f..%.0f; median %.0f us), memcpy %6.0f MB/s "
        "(%.0f..%.0f), ratio to memcpy %.3f, %d reps\n",
        what, bytes / 1e6, f.Median(), f.Min(), f.Max(), bytes / f.Median(), copy.Median(),
        copy.Min(), copy.Max(), f.Median() / copy.Median(), reps);
  };
  line("fetch", fetch);
  line("push", push);
  line("push (shared memory)", shm_push);
  line("fetch (shared memory)", shm_fetch);
  line("push (local link, shared memory)", link_push);
  line("fetch (local link, shared memory)", link_fetch);
  line("bare TCP socket, received in place", socket_fetch);
  std::printf("P4 fetch / bare socket %5.2f MB: %.2f; push / bare socket: %.2f\n", bytes / 1e6,
              fetch.Median() / socket_fetch.Median(), push.Median() / socket_fetch.Median());
  if (shm_client.bytes_shared() == 0) {
    std::fprintf(stderr, "the shared-memory pushes streamed instead\n");
    return 1;
  }
  if (link_client.bytes_shared() == 0 || link_client.bytes_fetched_shared() == 0) {
    std::fprintf(stderr, "the local link's transfers did not go through shared memory\n");
    return 1;
  }
  if (shm_client.bytes_fetched_shared() == 0) {
    std::fprintf(stderr, "the shared-memory fetches streamed instead\n");
    return 1;
  }
  std::fflush(stdout);
  return 0;
}

}  // namespace
}  // namespace fedsim

int main(int argc, char** argv) {
  // As the fedsim binary does (tools/main.cc): with glibc's defaults every
  // transfer faulted its buffers in again, and this bench measured 70-150
  // MB/s for 0.8 MB instead of about 1 GB/s (bench/README.md, P4).
  if (std::getenv("P4_MALLOC_DEFAULTS") == nullptr) fedsim::KeepFreedMemoryForReuse();
  int reps = 21;
  for (int i = 1; i < argc; ++i) {
    if (std::strncmp(argv[i], "--reps=", 7) == 0) reps = std::max(1, std::atoi(argv[i] + 7));
  }
  int rc = 0;
  if (const char* s = std::getenv("P4_FLOATS")) return fedsim::Bench(std::atol(s), reps);
  rc = fedsim::Bench(200000, reps);                  // 0.8 MB
  if (rc == 0) rc = fedsim::Bench(1'250'000, reps);  // 5 MB
  return rc;
}
