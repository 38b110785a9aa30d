#include "server/aggregator_client.h"

#include <algorithm>
#include <chrono>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "server/wire.h"

namespace fedsim {
namespace {

std::chrono::system_clock::time_point DeadlineIn(double seconds) {
  return std::chrono::system_clock::now() +
         std::chrono::microseconds(static_cast<int64_t>(seconds * 1e6));
}

}  // namespace

std::shared_ptr<grpc::Channel> NewWireChannel(const std::string& address) {
  return grpc::CreateCustomChannel(address, grpc::InsecureChannelCredentials(),
                                   WireChannelArguments());
}

AggregatorClient::AggregatorClient(std::shared_ptr<grpc::Channel> channel, size_t chunk_bytes)
    : stub_(wire::Aggregator::NewStub(channel)),
      chunk_bytes_(std::clamp<size_t>(chunk_bytes / 4 * 4, 4, kMaxChunkBytes)) {}

absl::StatusOr<wire::RegisterResponse> AggregatorClient::Register(const std::string& worker_name,
                                                                  uint32_t slots,
                                                                  uint32_t protocol_version) {
  wire::RegisterRequest request;
  request.set_protocol_version(protocol_version);
  request.set_worker_name(worker_name);
  request.set_slots(slots);
#ifdef FEDSIM_BUILD_ID
  request.set_build_id(FEDSIM_BUILD_ID);
#endif
  wire::RegisterResponse response;
  grpc::ClientContext context;
  context.set_deadline(DeadlineIn(rpc_timeout_s_));
  grpc::Status status = stub_->Register(&context, request, &response);
  if (!status.ok()) return FromGrpcStatus(status);
  return response;
}

absl::StatusOr<wire::GetTaskResponse> AggregatorClient::GetTask(uint64_t worker_id,
                                                                uint32_t max_tasks,
                                                                double wait_s) {
  wire::GetTaskRequest request;
  request.set_worker_id(worker_id);
  request.set_max_tasks(max_tasks);
  request.set_wait_s(wait_s);
  wire::GetTaskResponse response;
  grpc::ClientContext context;
  context.set_deadline(DeadlineIn(wait_s + rpc_timeout_s_));
  grpc::Status status = stub_->GetTask(&context, request, &response);
  if (!status.ok()) return FromGrpcStatus(status);
  return response;
}

absl::StatusOr<wire::HeartbeatResponse> AggregatorClient::Heartbeat(
    uint64_t worker_id, const std::vector<TaskId>& in_flight) {
  wire::HeartbeatRequest request;
  request.set_worker_id(worker_id);
  for (TaskId id : in_flight) request.add_in_flight(id);
  wire::HeartbeatResponse response;
  grpc::ClientContext context;
  context.set_deadline(DeadlineIn(rpc_timeout_s_));
  grpc::Status status = stub_->Heartbeat(&context, request, &response);
  if (!status.ok()) return FromGrpcStatus(status);
  return response;
}

absl::StatusOr<std::vector<float>> AggregatorClient::FetchModel(uint64_t worker_id,
                                                                Version version) {
  wire::FetchModelRequest request;
  request.set_worker_id(worker_id);
  request.set_version(version);
  grpc::ClientContext context;
  std::unique_ptr<grpc::ClientReader<wire::ModelChunk>> reader =
      stub_->FetchModel(&context, request);
  std::vector<float> params;
  wire::ModelChunk chunk;
  uint64_t filled = 0;
  uint64_t expected = 0;
  uint64_t bytes = 0;
  bool first = true;
  absl::Status bad;
  while (reader->Read(&chunk)) {
    const std::string& data = chunk.data();
    bytes += data.size();
    if (!bad.ok()) continue;
    if (first) {
      expected = chunk.num_params();
      params.reserve(expected);  // append below: no zero-fill
      first = false;
    }
    const uint64_t count = data.size() / sizeof(float);
    if (chunk.version() != version || chunk.offset() != filled ||
        data.size() % sizeof(float) != 0 || filled + count > expected) {
      bad = absl::DataLossError(absl::StrCat(
          "FetchModel(", version, "): bad chunk (version ", chunk.version(), ", offset ",
          chunk.offset(), ", expected ", filled, ", ", data.size(), " bytes of ", expected,
          " floats)"));
      context.TryCancel();
      continue;
    }
    const float* begin = reinterpret_cast<const float*>(data.data());
    params.insert(params.end(), begin, begin + count);
    filled += count;
  }
  grpc::Status status = reader->Finish();
  bytes_fetched_ += bytes;
  if (!bad.ok()) return bad;
  if (!status.ok()) return FromGrpcStatus(status);
  if (first || filled != expected) {
    return absl::DataLossError(absl::StrCat("FetchModel(", version, "): got ", filled,
                                            " of ", expected, " floats"));
  }
  return params;
}

absl::StatusOr<bool> AggregatorClient::PushUpdate(uint64_t worker_id, const TaskResult& result) {
  grpc::ClientContext context;
  wire::PushUpdateResponse response;
  std::unique_ptr<grpc::ClientWriter<wire::UpdateChunk>> writer =
      stub_->PushUpdate(&context, &response);
  wire::UpdateChunk chunk;
  wire::UpdateHeader* header = chunk.mutable_header();
  header->set_worker_id(worker_id);
  header->set_task_id(result.id);
  header->set_client_id(result.client);
  header->set_base_version(result.base_version);
  header->set_num_examples(result.num_examples);
  header->set_num_params(result.delta.size());
  header->mutable_metrics()->insert(result.metrics.begin(), result.metrics.end());
  const size_t floats_per_chunk = chunk_bytes_ / sizeof(float);
  const size_t n = result.delta.size();
  size_t offset = 0;
  uint64_t bytes = 0;
  do {
    size_t count = std::min(floats_per_chunk, n - offset);
    chunk.set_offset(offset);
    chunk.mutable_data()->assign(reinterpret_cast<const char*>(result.delta.data() + offset),
                                 count * sizeof(float));
    // The server may refuse after the header; Finish() then says why.
    if (!writer->Write(chunk)) break;
    if (offset == 0) chunk.clear_header();
    bytes += count * sizeof(float);
    offset += count;
  } while (offset < n);
  writer->WritesDone();
  grpc::Status status = writer->Finish();
  bytes_pushed_ += bytes;
  if (!status.ok()) return FromGrpcStatus(status);
  return response.duplicate();
}

}  // namespace fedsim
