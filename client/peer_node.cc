#include "client/peer_node.h"

#include <algorithm>
#include <atomic>
#include <cstring>
#include <map>
#include <optional>
#include <string_view>
#include <thread>
#include <tuple>
#include <utility>

#include "absl/base/thread_annotations.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "core/mix_math.h"
#include "grpcpp/grpcpp.h"
#include "proto/fedsim.grpc.pb.h"
#include "rpc/auth.h"
#include "rpc/peer_client.h"
#include "rpc/wire.h"

namespace fedsim {
namespace {

using Sum = std::shared_ptr<const std::vector<double>>;

// Neighbours' models fetched at once in a gossip step.
constexpr size_t kFetchThreads = 4;

// (client, version, stage, step).
using Key = std::tuple<ClientId, Version, int, uint32_t>;

Key KeyOf(const wire::PeerKey& k) {
  return Key{k.client(), k.version(), static_cast<int>(k.stage()),
             k.stage() == wire::PeerKey::Z ? k.step() : 0};
}

grpc::Status ToGrpc(const absl::Status& s) {
  if (s.ok()) return grpc::Status::OK;
  return grpc::Status(static_cast<grpc::StatusCode>(s.code()), std::string(s.message()));
}

std::string JoinHostPort(const std::string& host, int port) {
  return host.find(':') != std::string::npos ? absl::StrCat("[", host, "]:", port)
                                             : absl::StrCat(host, ":", port);
}

class PeerNodeImpl final : public PeerNode, public wire::Peer::Service {
 public:
  PeerNodeImpl(const PeerNodeOptions& options, ServerFetch fetch)
      : options_(options), fetch_(std::move(fetch)), peers_(options.token) {}

  ~PeerNodeImpl() override {
    if (server_ != nullptr) server_->Shutdown(std::chrono::system_clock::now());
  }

  absl::Status Start() {
    absl::StatusOr<HostPort> hp = ParseHostPort(options_.listen);
    if (!hp.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat("--peer_listen=", options_.listen, ": ", hp.status().message()));
    }
    if (!IsLoopbackHost(hp->host) && options_.token.empty()) {
      return absl::FailedPreconditionError(absl::StrCat(
          "--peer_listen=", options_.listen,
          " is not a loopback address, and the run has no token to guard it; give the worker "
          "the server's run token (--token_file or $FEDSIM_TOKEN)"));
    }
    grpc::ServerBuilder builder;
    int port = 0;
    builder.AddListeningPort(options_.listen, grpc::InsecureServerCredentials(), &port);
    builder.SetMaxReceiveMessageSize(static_cast<int>(2 * kMaxChunkBytes));
    builder.AddChannelArgument(GRPC_ARG_ALLOW_REUSEPORT, 0);
    builder.RegisterService(this);
    server_ = builder.BuildAndStart();
    if (server_ == nullptr || port == 0) {
      return absl::UnavailableError(
          absl::StrCat("cannot listen for peers on ", options_.listen, " (in use?)"));
    }
    address_ =
        JoinHostPort(options_.advertise_host.empty() ? hp->host : options_.advertise_host, port);
    return absl::OkStatus();
  }

  std::string address() const override { return address_; }

  Params Held(ClientId c, Version version) const override {
    absl::MutexLock lock(&mu_);
    return FindLocked(Key{c, version, wire::PeerKey::X, 0});
  }

  void KeepTrained(ClientId c, Version version, Params y) override {
    absl::MutexLock lock(&mu_);
    models_[Key{c, version, wire::PeerKey::Y, 0}] = std::move(y);
  }

  absl::Status Replicate(const std::string& address, ClientId c, Version version,
                         const std::vector<float>& y) override {
    return peers_.Put(address, PeerKeyOf(c, version, wire::PeerKey::Y), y);
  }

  uint64_t bytes_fetched() const override { return peers_.bytes_fetched(); }
  uint64_t bytes_put() const override { return peers_.bytes_put(); }

  // ------------------------------------------------------------ the service

  grpc::Status Hold(grpc::ServerContext* context, const wire::HoldRequest* request,
                    wire::HoldResponse* response) override {
    (void)response;
    if (grpc::Status s = Authorize(context); !s.ok()) return s;
    const Version v = request->version();
    {
      absl::MutexLock lock(&mu_);
      if (request->drop_older()) DropOlderLocked(v);
      for (uint32_t c : request->release()) {
        std::erase_if(models_, [c](const auto& e) { return std::get<0>(e.first) == c; });
      }
    }
    if (!request->from_peer().empty()) {
      std::vector<std::pair<std::string, wire::PeerKey>> wanted;
      for (uint32_t c : request->clients()) {
        wanted.emplace_back(request->from_peer(), PeerKeyOf(c, v, wire::PeerKey::X));
      }
      absl::StatusOr<std::vector<Params>> got = FetchAll(wanted);
      if (!got.ok()) return ToGrpc(got.status());
      absl::MutexLock lock(&mu_);
      for (int k = 0; k < request->clients_size(); ++k) {
        models_[Key{request->clients(k), v, wire::PeerKey::X, 0}] = (*got)[k];
      }
      return grpc::Status::OK;
    }
    for (uint32_t c : request->clients()) {
      absl::StatusOr<Params> got = fetch_(ModelRef::OfClient(c, v));
      if (!got.ok()) return ToGrpc(got.status());
      absl::MutexLock lock(&mu_);
      models_[Key{c, v, wire::PeerKey::X, 0}] = *std::move(got);
    }
    return grpc::Status::OK;
  }

  grpc::Status Gossip(grpc::ServerContext* context, const wire::GossipRequest* request,
                      wire::GossipResponse* response) override {
    if (grpc::Status s = Authorize(context); !s.ok()) return s;
    const Version v = request->version();
    const uint32_t step = request->step();
    if (step == 0 || step > request->steps()) {
      return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                          absl::StrCat("gossip step ", step, " of ", request->steps()));
    }
    {
      // Step q starts once every worker has finished step q - 1, so nobody
      // reads z^(q-2) any more (nor anything of an older version at step 1).
      absl::MutexLock lock(&mu_);
      if (step == 1) DropOlderLocked(v);
      std::erase_if(models_, [v, step](const auto& e) {
        return std::get<1>(e.first) == v && std::get<2>(e.first) == wire::PeerKey::Z &&
               std::get<3>(e.first) + 2 <= step;
      });
    }
    // Step q reads z^(q-1): at step 1 each source's x or y, after that z.
    std::map<ClientId, Params> sources;
    const uint64_t before = peers_.bytes_fetched();
    // What this worker holds it reads here; the rest it fetches.
    std::vector<ClientId> remote;
    std::vector<std::pair<std::string, wire::PeerKey>> wanted;
    for (const wire::GossipRequest::Source& s : request->sources()) {
      const wire::PeerKey key = step == 1 ? PeerKeyOf(s.client(), v, s.stage())
                                          : PeerKeyOf(s.client(), v, wire::PeerKey::Z, step - 1);
      absl::MutexLock lock(&mu_);
      Params p = FindLocked(KeyOf(key));
      if (p != nullptr) {
        sources[s.client()] = std::move(p);
      } else {
        remote.push_back(s.client());
        wanted.emplace_back(s.address(), key);
      }
    }
    absl::StatusOr<std::vector<Params>> fetched = FetchAll(wanted);
    if (!fetched.ok()) return ToGrpc(fetched.status());
    for (size_t k = 0; k < remote.size(); ++k) sources[remote[k]] = (*fetched)[k];
    response->set_bytes_fetched(peers_.bytes_fetched() - before);
    std::vector<std::pair<ClientId, Params>> outputs;
    for (const wire::MixRow& row : request->rows()) {
      if (row.cols_size() != row.weights_size() || row.cols_size() == 0) {
        return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                            absl::StrCat("row of client ", row.client(), " is malformed"));
      }
      std::vector<const float*> ptrs;
      size_t p = 0;
      for (int e = 0; e < row.cols_size(); ++e) {
        auto it = sources.find(row.cols(e));
        if (it == sources.end()) {
          return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                              absl::StrCat("row of client ", row.client(), " reads client ",
                                           row.cols(e), ", which is not among the sources"));
        }
        if (e > 0 && it->second->size() != p) {
          return grpc::Status(grpc::StatusCode::DATA_LOSS, "neighbour models differ in size");
        }
        p = it->second->size();
        ptrs.push_back(it->second->data());
      }
      Params out;
      if (row.cols_size() == 1 && row.cols(0) == row.client() && row.weights(0) == 1.0f) {
        out = sources[row.client()];  // the identity: the model as it is, bit for bit
      } else {
        std::vector<float> z(p);
        MixRow(ptrs, std::span<const float>(row.weights().data(), row.weights_size()), z);
        out = std::make_shared<const std::vector<float>>(std::move(z));
      }
      outputs.emplace_back(row.client(), std::move(out));
    }
    absl::MutexLock lock(&mu_);
    for (auto& [c, z] : outputs) {
      models_[Key{c, v, wire::PeerKey::Z, step}] = z;
      if (step == request->steps()) models_[Key{c, v + 1, wire::PeerKey::X, 0}] = z;
    }
    return grpc::Status::OK;
  }

  grpc::Status Accumulate(grpc::ServerContext* context, const wire::AccumulateRequest* request,
                          wire::AccumulateResponse* response) override {
    if (grpc::Status s = Authorize(context); !s.ok()) return s;
    const Version v = request->version();
    std::vector<Params> xs;
    {
      absl::MutexLock lock(&mu_);
      for (uint32_t c : request->clients()) {
        Params x = FindLocked(Key{c, v, wire::PeerKey::X, 0});
        if (x == nullptr) {
          return grpc::Status(
              grpc::StatusCode::NOT_FOUND,
              absl::StrCat("this worker does not hold client ", c, "'s model at version ", v));
        }
        xs.push_back(std::move(x));
      }
    }
    if (xs.empty()) return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "no clients");
    const size_t p = xs[0]->size();
    if (request->kind() == wire::AccumulateRequest::SUM) {
      std::vector<double> acc(p, 0.0);
      if (request->has_prev()) {
        absl::StatusOr<Sum> prev = GetSum(request->prev_address(), request->prev_client(), v);
        if (!prev.ok()) return ToGrpc(prev.status());
        if ((*prev)->size() != p) return grpc::Status(grpc::StatusCode::DATA_LOSS, "sum size");
        acc = **prev;
      }
      for (const Params& x : xs) AddToModelSum(*x, acc);
      absl::MutexLock lock(&mu_);
      sums_[Key{request->clients(request->clients_size() - 1), v, wire::PeerKey::SUM, 0}] =
          std::make_shared<const std::vector<double>>(std::move(acc));
      return grpc::Status::OK;
    }
    absl::StatusOr<Sum> sum = GetSum(request->sum_address(), request->sum_client(), v);
    if (!sum.ok()) return ToGrpc(sum.status());
    if ((*sum)->size() != p || request->num_clients() == 0) {
      return grpc::Status(grpc::StatusCode::DATA_LOSS, "sum size");
    }
    std::vector<double> mean = **sum;
    for (double& m : mean) m /= static_cast<double>(request->num_clients());
    double dist = request->dist_in();
    for (const Params& x : xs) dist = AddSquaredDistance(*x, mean, dist);
    response->set_dist_out(dist);
    return grpc::Status::OK;
  }

  grpc::Status Put(grpc::ServerContext* context, grpc::ServerReader<wire::PeerChunk>* reader,
                   wire::PutResponse* response) override {
    (void)response;
    if (grpc::Status s = Authorize(context); !s.ok()) return s;
    wire::PeerChunk chunk;
    wire::PeerKey key;
    std::vector<float> values;
    uint64_t total = 0;
    bool first = true;
    while (reader->Read(&chunk)) {
      if (first) {
        key = chunk.key();
        total = chunk.num_values();
        if (key.stage() != wire::PeerKey::X && key.stage() != wire::PeerKey::Y) {
          return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "Put takes stage X or Y only");
        }
        if (total > (uint64_t{1} << 34)) {
          return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "model too large");
        }
        values.reserve(total);
        first = false;
      }
      if (chunk.offset() != values.size() || chunk.data().size() % sizeof(float) != 0 ||
          values.size() + chunk.data().size() / sizeof(float) > total) {
        return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                            absl::StrCat("chunks of ", PeerKeyText(key), " do not add up"));
      }
      const size_t n = chunk.data().size() / sizeof(float);
      values.resize(values.size() + n);
      std::memcpy(values.data() + values.size() - n, chunk.data().data(), n * sizeof(float));
    }
    if (first || values.size() != total) {
      return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                          absl::StrCat("Put of ", PeerKeyText(key), ": ", values.size(),
                                       " values, announced ", total));
    }
    absl::MutexLock lock(&mu_);
    models_[KeyOf(key)] = std::make_shared<const std::vector<float>>(std::move(values));
    return grpc::Status::OK;
  }

  grpc::Status Fetch(grpc::ServerContext* context, const wire::PeerKey* key,
                     grpc::ServerWriter<wire::PeerChunk>* writer) override {
    if (grpc::Status s = Authorize(context); !s.ok()) return s;
    Params floats;
    Sum doubles;
    {
      absl::MutexLock lock(&mu_);
      if (key->stage() == wire::PeerKey::SUM) {
        auto it = sums_.find(KeyOf(*key));
        if (it != sums_.end()) doubles = it->second;
      } else {
        floats = FindLocked(KeyOf(*key));
      }
    }
    const char* data = nullptr;
    size_t count = 0, value_bytes = 0;
    if (floats != nullptr) {
      data = reinterpret_cast<const char*>(floats->data());
      count = floats->size();
      value_bytes = sizeof(float);
    } else if (doubles != nullptr) {
      data = reinterpret_cast<const char*>(doubles->data());
      count = doubles->size();
      value_bytes = sizeof(double);
    } else {
      return grpc::Status(grpc::StatusCode::NOT_FOUND,
                          absl::StrCat("this worker does not hold ", PeerKeyText(*key)));
    }
    const size_t per_chunk = std::max<size_t>(1, kMaxChunkBytes / value_bytes);
    wire::PeerChunk chunk;
    size_t offset = 0;
    do {
      const size_t n = std::min(per_chunk, count - offset);
      chunk.set_num_values(count);
      chunk.set_offset(offset);
      chunk.set_data(data + offset * value_bytes, n * value_bytes);
      if (!writer->Write(chunk)) break;
      offset += n;
    } while (offset < count);
    return grpc::Status::OK;
  }

 private:
  grpc::Status Authorize(grpc::ServerContext* context) const {
    if (options_.token.empty()) return grpc::Status::OK;
    const auto& md = context->client_metadata();
    auto it = md.find(kTokenMetadataKey);
    std::optional<absl::string_view> value;
    if (it != md.end()) value = absl::string_view(it->second.data(), it->second.size());
    absl::Status s = CheckBearer(value, options_.token);
    if (!s.ok() && options_.log != nullptr) {
      std::fprintf(options_.log, "fedsim client: refused a peer call from %s: %s\n",
                   context->peer().c_str(), std::string(s.message()).c_str());
    }
    return ToGrpc(s);
  }

  Params FindLocked(const Key& key) const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    auto it = models_.find(key);
    return it == models_.end() ? nullptr : it->second;
  }

  void DropOlderLocked(Version v) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    std::erase_if(models_, [v](const auto& e) { return std::get<1>(e.first) < v; });
    std::erase_if(sums_, [v](const auto& e) { return std::get<1>(e.first) < v; });
  }

  // Models from other workers, kFetchThreads at a time (a fetch is mostly
  // waiting on the other side), in the order asked.
  absl::StatusOr<std::vector<Params>> FetchAll(
      const std::vector<std::pair<std::string, wire::PeerKey>>& wanted) {
    std::vector<Params> out(wanted.size());
    std::vector<absl::Status> errors(wanted.size());
    std::atomic<size_t> next{0};
    auto fetch = [&] {
      for (size_t k = next++; k < wanted.size(); k = next++) {
        absl::StatusOr<std::vector<float>> got =
            peers_.FetchFloats(wanted[k].first, wanted[k].second);
        if (got.ok()) {
          out[k] = std::make_shared<const std::vector<float>>(*std::move(got));
        } else {
          errors[k] = got.status();
        }
      }
    };
    std::vector<std::thread> threads;
    for (size_t t = 1; t < std::min(kFetchThreads, wanted.size()); ++t) threads.emplace_back(fetch);
    fetch();
    for (std::thread& t : threads) t.join();
    for (const absl::Status& e : errors) {
      if (!e.ok()) return e;
    }
    return out;
  }

  // The running sum ending at client `c` of version v: here, or fetched.
  absl::StatusOr<Sum> GetSum(const std::string& address, ClientId c, Version v) {
    {
      absl::MutexLock lock(&mu_);
      auto it = sums_.find(Key{c, v, wire::PeerKey::SUM, 0});
      if (it != sums_.end()) return it->second;
    }
    absl::StatusOr<std::vector<double>> got =
        peers_.FetchDoubles(address, PeerKeyOf(c, v, wire::PeerKey::SUM));
    if (!got.ok()) return got.status();
    return std::make_shared<const std::vector<double>>(*std::move(got));
  }

  const PeerNodeOptions options_;
  const ServerFetch fetch_;
  PeerClients peers_;
  std::unique_ptr<grpc::Server> server_;
  std::string address_;
  mutable absl::Mutex mu_;
  std::map<Key, Params> models_ ABSL_GUARDED_BY(mu_);
  std::map<Key, Sum> sums_ ABSL_GUARDED_BY(mu_);
};

}  // namespace

absl::StatusOr<std::unique_ptr<PeerNode>> StartPeerNode(const PeerNodeOptions& options,
                                                        PeerNode::ServerFetch fetch) {
  auto node = std::make_unique<PeerNodeImpl>(options, std::move(fetch));
  if (absl::Status s = node->Start(); !s.ok()) return s;
  return std::unique_ptr<PeerNode>(std::move(node));
}

}  // namespace fedsim
