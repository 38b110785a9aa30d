#include "rpc/local_link.h"

#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <utility>

#include "absl/strings/str_cat.h"

namespace fedsim {
namespace {

// The frame header as it goes over the socket.
struct WireHeader {
  uint64_t call;
  uint32_t length;
  uint8_t method;
  uint8_t response;
  uint16_t code;
};
static_assert(sizeof(WireHeader) == 16);

absl::Status LinkError(const char* what, int err) {
  return absl::UnavailableError(
      absl::StrCat("the local link to the other process failed (", what, ": ",
                   err == 0 ? "closed by the other end" : std::strerror(err), ")"));
}

// Reads exactly n bytes; Unavailable at EOF or an error.
absl::Status ReadFully(int fd, char* data, size_t n) {
  while (n > 0) {
    const ssize_t got = read(fd, data, n);
    if (got < 0 && errno == EINTR) continue;
    if (got <= 0) return LinkError("read", got == 0 ? 0 : errno);
    data += got;
    n -= static_cast<size_t>(got);
  }
  return absl::OkStatus();
}

}  // namespace

const char* LinkMethodName(LinkMethod method) {
  switch (method) {
    case LinkMethod::kRegister:
      return "Register";
    case LinkMethod::kGetTask:
      return "GetTask";
    case LinkMethod::kFetchModel:
      return "FetchModel";
    case LinkMethod::kPushUpdate:
      return "PushUpdate";
    case LinkMethod::kPushFolded:
      return "PushFolded";
    case LinkMethod::kHeartbeat:
      return "Heartbeat";
  }
  return "an unknown method";
}

LinkEnd::LinkEnd(int fd) : fd_(fd) {}

LinkEnd::~LinkEnd() { close(fd_); }

absl::Status LinkEnd::Write(const LinkFrame& frame) {
  if (frame.payload.size() > kMaxLinkPayload) {
    return absl::InvalidArgumentError(
        absl::StrCat("a ", LinkMethodName(frame.method), " message of ", frame.payload.size(),
                     " bytes is over the local link's limit of ", kMaxLinkPayload));
  }
  WireHeader header{frame.call, static_cast<uint32_t>(frame.payload.size()),
                    static_cast<uint8_t>(frame.method), static_cast<uint8_t>(frame.response),
                    static_cast<uint16_t>(frame.code)};
  iovec parts[2] = {{&header, sizeof(header)},
                    {const_cast<char*>(frame.payload.data()), frame.payload.size()}};
  iovec* next = parts;
  int count = frame.payload.empty() ? 1 : 2;
  absl::MutexLock lock(&write_mu_);
  while (count > 0) {
    msghdr message{};
    message.msg_iov = next;
    message.msg_iovlen = static_cast<size_t>(count);
    // MSG_NOSIGNAL: a closed other end is an error here, not a SIGPIPE.
    ssize_t sent = sendmsg(fd_, &message, MSG_NOSIGNAL);
    if (sent < 0 && errno == EINTR) continue;
    if (sent < 0) return LinkError("write", errno);
    while (count > 0 && static_cast<size_t>(sent) >= next->iov_len) {
      sent -= static_cast<ssize_t>(next->iov_len);
      ++next;
      --count;
    }
    if (count > 0) {
      next->iov_base = static_cast<char*>(next->iov_base) + sent;
      next->iov_len -= static_cast<size_t>(sent);
    }
  }
  return absl::OkStatus();
}

absl::Status LinkEnd::Read(LinkFrame* frame) {
  WireHeader header;
  if (absl::Status s = ReadFully(fd_, reinterpret_cast<char*>(&header), sizeof(header)); !s.ok()) {
    return s;
  }
  const uint8_t first = static_cast<uint8_t>(LinkMethod::kRegister);
  const uint8_t last = static_cast<uint8_t>(LinkMethod::kHeartbeat);
  if (header.method < first || header.method > last || header.response > 1 ||
      header.code > static_cast<uint16_t>(absl::StatusCode::kUnauthenticated)) {
    return absl::DataLossError(
        absl::StrCat("the local link carried a frame header that is not one "
                     "(method ",
                     header.method, ", code ", header.code, ")"));
  }
  frame->call = header.call;
  frame->method = static_cast<LinkMethod>(header.method);
  frame->response = header.response != 0;
  frame->code = static_cast<absl::StatusCode>(header.code);
  frame->payload.resize(header.length);
  return ReadFully(fd_, frame->payload.data(), header.length);
}

void LinkEnd::ShutDown() { shutdown(fd_, SHUT_RDWR); }

absl::Status WriteLinkResponse(LinkEnd* end, const LinkFrame& request, const absl::Status& status,
                               const google::protobuf::MessageLite* message) {
  LinkFrame frame;
  frame.call = request.call;
  frame.method = request.method;
  frame.response = true;
  frame.code = status.code();
  if (!status.ok()) {
    frame.payload = std::string(status.message());
  } else if (message != nullptr) {
    frame.payload = message->SerializeAsString();
  }
  return end->Write(frame);
}

absl::StatusOr<std::string> LinkClient::Call(LinkMethod method, std::string request) {
  LinkFrame frame;
  frame.method = method;
  frame.payload = std::move(request);
  {
    absl::MutexLock lock(&mu_);
    if (!broken_.ok()) return broken_;
    frame.call = next_call_++;
  }
  const uint64_t id = frame.call;
  if (absl::Status written = end_.Write(frame); !written.ok()) {
    absl::MutexLock lock(&mu_);
    if (absl::IsUnavailable(written) && broken_.ok()) broken_ = written;
    return written;
  }
  frame = LinkFrame();
  absl::MutexLock lock(&mu_);
  while (true) {
    if (auto it = replies_.find(id); it != replies_.end()) {
      LinkFrame reply = std::move(it->second);
      replies_.erase(it);
      if (reply.code != absl::StatusCode::kOk) return absl::Status(reply.code, reply.payload);
      return std::move(reply.payload);
    }
    if (!broken_.ok()) return broken_;
    if (!reading_) {
      // Read for everyone until our own reply comes: the others' replies
      // wake their callers through the conditions below.
      reading_ = true;
      mu_.Unlock();
      LinkFrame got;
      absl::Status read = end_.Read(&got);
      mu_.Lock();
      reading_ = false;
      if (!read.ok()) {
        broken_ = read;
      } else if (!got.response) {
        broken_ = absl::DataLossError("the local link carried a request to the worker");
      } else {
        replies_[got.call] = std::move(got);
      }
      continue;
    }
    auto ready = [this, id]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
      return replies_.contains(id) || !reading_ || !broken_.ok();
    };
    mu_.Await(absl::Condition(&ready));
  }
}

absl::Status LinkClient::Call(LinkMethod method, const google::protobuf::MessageLite& request,
                              google::protobuf::MessageLite* response) {
  absl::StatusOr<std::string> payload = Call(method, request.SerializeAsString());
  if (!payload.ok()) return payload.status();
  if (!response->ParseFromString(*payload)) {
    return absl::DataLossError(absl::StrCat("the answer to ", LinkMethodName(method),
                                            " on the local link does not parse"));
  }
  return absl::OkStatus();
}

bool LinkClient::closed() const {
  absl::MutexLock lock(&mu_);
  return !broken_.ok();
}

}  // namespace fedsim
