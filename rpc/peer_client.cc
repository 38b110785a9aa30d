#include "rpc/peer_client.h"

#include <algorithm>
#include <cstring>
#include <utility>

#include "absl/strings/str_cat.h"
#include "grpcpp/grpcpp.h"
#include "rpc/auth.h"
#include "rpc/wire.h"

namespace fedsim {
namespace {

absl::Status Named(const grpc::Status& status, const std::string& what) {
  const absl::Status s = FromGrpcStatus(status);
  return absl::Status(s.code(), absl::StrCat(what, ": ", s.message()));
}

}  // namespace

wire::PeerKey PeerKeyOf(ClientId c, Version v, wire::PeerKey::Stage stage, uint32_t step) {
  wire::PeerKey k;
  k.set_client(c);
  k.set_version(v);
  k.set_stage(stage);
  k.set_step(step);
  return k;
}

std::string PeerKeyText(const wire::PeerKey& key) {
  const char* stage = key.stage() == wire::PeerKey::X   ? "x"
                      : key.stage() == wire::PeerKey::Y ? "y"
                      : key.stage() == wire::PeerKey::Z ? "z"
                                                        : "sum";
  return absl::StrCat("client ", key.client(), " ", stage,
                      key.stage() == wire::PeerKey::Z ? absl::StrCat(key.step()) : "", "@",
                      key.version());
}

PeerClients::PeerClients(std::string token, absl::Duration timeout)
    : token_(std::move(token)), timeout_(timeout) {}

wire::Peer::Stub* PeerClients::Stub(const std::string& address) {
  absl::MutexLock lock(&mu_);
  std::unique_ptr<wire::Peer::Stub>& stub = stubs_[address];
  if (stub == nullptr) {
    grpc::ChannelArguments args;
    args.SetMaxReceiveMessageSize(static_cast<int>(2 * kMaxChunkBytes));
    stub = wire::Peer::NewStub(
        grpc::CreateCustomChannel(address, grpc::InsecureChannelCredentials(), args));
  }
  return stub.get();
}

void PeerClients::Prepare(grpc::ClientContext* context, absl::Duration timeout) const {
  if (!token_.empty()) context->AddMetadata(kTokenMetadataKey, BearerValue(token_));
  context->set_deadline(GrpcTimeout(timeout));
}

absl::Status PeerClients::Ping(const std::string& address, absl::Duration timeout) {
  grpc::ClientContext context;
  Prepare(&context, timeout);
  wire::HoldRequest request;
  wire::HoldResponse response;
  const grpc::Status status = Stub(address)->Hold(&context, request, &response);
  if (!status.ok()) return Named(status, absl::StrCat("worker ", address));
  return absl::OkStatus();
}

absl::StatusOr<std::string> PeerClients::FetchBytes(const std::string& address,
                                                    const wire::PeerKey& key, size_t value_bytes,
                                                    uint64_t* values) {
  const std::string what = absl::StrCat("fetching ", PeerKeyText(key), " from worker ", address);
  grpc::ClientContext context;
  Prepare(&context, timeout_);
  std::unique_ptr<grpc::ClientReader<wire::PeerChunk>> reader = Stub(address)->Fetch(&context, key);
  std::string out;
  bool sized = false;
  absl::Status bad;
  wire::PeerChunk chunk;
  while (reader->Read(&chunk)) {
    if (!bad.ok()) continue;
    if (!sized) {
      *values = chunk.num_values();
      out.reserve(chunk.num_values() * value_bytes);
      sized = true;
    }
    if (chunk.offset() * value_bytes != out.size() ||
        out.size() + chunk.data().size() > *values * value_bytes) {
      bad = absl::DataLossError(absl::StrCat(what, ": chunks do not add up"));
      context.TryCancel();
      continue;
    }
    out.append(chunk.data());
  }
  const grpc::Status status = reader->Finish();
  if (!bad.ok()) return bad;
  if (!status.ok()) return Named(status, what);
  if (!sized || out.size() != *values * value_bytes) {
    return absl::DataLossError(absl::StrCat(what, ": ", out.size(), " bytes, expected ",
                                            sized ? *values * value_bytes : 0));
  }
  bytes_fetched_ += out.size();
  return out;
}

template <typename T>
absl::StatusOr<std::vector<T>> PeerClients::FetchValues(const std::string& address,
                                                        const wire::PeerKey& key) {
  uint64_t n = 0;
  absl::StatusOr<std::string> bytes = FetchBytes(address, key, sizeof(T), &n);
  if (!bytes.ok()) return bytes.status();
  std::vector<T> v(n);
  if (n > 0) std::memcpy(v.data(), bytes->data(), n * sizeof(T));
  return v;
}

absl::StatusOr<std::vector<float>> PeerClients::FetchFloats(const std::string& address,
                                                            const wire::PeerKey& key) {
  return FetchValues<float>(address, key);
}

absl::StatusOr<std::vector<double>> PeerClients::FetchDoubles(const std::string& address,
                                                              const wire::PeerKey& key) {
  return FetchValues<double>(address, key);
}

absl::Status PeerClients::Put(const std::string& address, const wire::PeerKey& key,
                              std::span<const float> values) {
  grpc::ClientContext context;
  Prepare(&context, timeout_);
  wire::PutResponse response;
  std::unique_ptr<grpc::ClientWriter<wire::PeerChunk>> writer =
      Stub(address)->Put(&context, &response);
  const size_t per_chunk = kMaxChunkBytes / sizeof(float);
  size_t offset = 0;
  do {
    wire::PeerChunk chunk;
    if (offset == 0) *chunk.mutable_key() = key;
    const size_t n = std::min(per_chunk, values.size() - offset);
    chunk.set_num_values(values.size());
    chunk.set_offset(offset);
    chunk.set_data(reinterpret_cast<const char*>(values.data() + offset), n * sizeof(float));
    if (!writer->Write(chunk)) break;
    offset += n;
  } while (offset < values.size());
  writer->WritesDone();
  const grpc::Status status = writer->Finish();
  if (!status.ok()) {
    return Named(status, absl::StrCat("handing ", PeerKeyText(key), " to worker ", address));
  }
  bytes_put_ += values.size() * sizeof(float);
  return absl::OkStatus();
}

absl::Status PeerClients::Hold(const std::string& address, const wire::HoldRequest& request) {
  grpc::ClientContext context;
  Prepare(&context, timeout_);
  wire::HoldResponse response;
  const grpc::Status status = Stub(address)->Hold(&context, request, &response);
  if (!status.ok()) return Named(status, absl::StrCat("Hold on worker ", address));
  return absl::OkStatus();
}

absl::StatusOr<wire::GossipResponse> PeerClients::Gossip(const std::string& address,
                                                         const wire::GossipRequest& request) {
  grpc::ClientContext context;
  Prepare(&context, timeout_);
  wire::GossipResponse response;
  const grpc::Status status = Stub(address)->Gossip(&context, request, &response);
  if (!status.ok()) {
    return Named(status, absl::StrCat("gossip step ", request.step(), " on worker ", address));
  }
  return response;
}

absl::StatusOr<wire::AccumulateResponse> PeerClients::Accumulate(
    const std::string& address, const wire::AccumulateRequest& request) {
  grpc::ClientContext context;
  Prepare(&context, timeout_);
  wire::AccumulateResponse response;
  const grpc::Status status = Stub(address)->Accumulate(&context, request, &response);
  if (!status.ok()) return Named(status, absl::StrCat("model sum on worker ", address));
  return response;
}

}  // namespace fedsim
