// LocalLink: the Aggregator calls (proto/fedsim.proto) between `fedsim run`
// and the worker processes it forked, over a socket pair made before the
// fork, without gRPC.
//
// A gRPC call on one machine wakes several threads on each side (pollers,
// callback executors, completion queues). On a 2-core machine those wake-ups
// take the cores from training, and a worker process brings its own set of
// gRPC threads. A link is one stream socket: a call is one frame written by
// the calling thread and one frame read back, and the server serves each
// link on one thread of its own. Models and updates still go through the
// shared-memory segments (rpc/shm_segment.h); only the small messages around
// them travel on the link (and whole tensors where a segment is refused).
//
// Frames: a 16-byte header (call id, payload length, method, request or
// response, status code; host byte order: both ends are the same binary on
// the same machine) and the payload, the serialized request or response
// message, or for a failed call the error message. No token or TLS: only
// the two processes that share the socket pair can use it.
//
// Thread safety: LinkEnd::Write and LinkClient::Call are thread-safe;
// LinkEnd::Read is for one reader at a time.
#ifndef FEDSIM_RPC_LOCAL_LINK_H_
#define FEDSIM_RPC_LOCAL_LINK_H_

#include <cstdint>
#include <string>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "google/protobuf/message_lite.h"

namespace fedsim {

enum class LinkMethod : uint8_t {
  kRegister = 1,
  kGetTask = 2,
  kFetchModel = 3,
  kPushUpdate = 4,  // payload: wire::LinkPush
  kPushFolded = 5,  // payload: one wire::FoldedChunk with the header
  kHeartbeat = 6,
};
const char* LinkMethodName(LinkMethod method);

// The largest payload a frame may carry (a whole model where shared memory
// is refused).
inline constexpr uint64_t kMaxLinkPayload = uint64_t{1} << 31;

struct LinkFrame {
  uint64_t call = 0;  // chosen by the caller; the response carries it back
  LinkMethod method = LinkMethod::kRegister;
  bool response = false;
  absl::StatusCode code = absl::StatusCode::kOk;  // of a response
  std::string payload;
};

// One end of a link: whole frames out and in.
class LinkEnd {
 public:
  // Takes ownership of `fd`, a connected stream socket.
  explicit LinkEnd(int fd);
  ~LinkEnd();
  LinkEnd(const LinkEnd&) = delete;
  LinkEnd& operator=(const LinkEnd&) = delete;

  // Writes the frame whole (frames of concurrent writers do not mix).
  // Unavailable when the other end is gone or the link was shut down;
  // InvalidArgument for a payload over kMaxLinkPayload.
  absl::Status Write(const LinkFrame& frame);
  // Blocks for the next frame. Unavailable at the other end's close (or
  // ShutDown); DataLoss for a header that cannot be one.
  absl::Status Read(LinkFrame* frame);
  // Ends the link both ways: a blocked Read returns, later calls fail.
  void ShutDown();

 private:
  const int fd_;
  absl::Mutex write_mu_;
};

// Writes the response frame to `request`: `message` when status is OK, else
// the status. Write's errors.
absl::Status WriteLinkResponse(LinkEnd* end, const LinkFrame& request, const absl::Status& status,
                               const google::protobuf::MessageLite* message);

// The worker's side: calls from any thread, each answered by the frame with
// its id. Whichever waiting caller finds nobody reading reads for all of
// them, so a reply usually wakes only its own caller.
class LinkClient {
 public:
  // Takes ownership of `fd`.
  explicit LinkClient(int fd) : end_(fd) {}

  // The response payload, or the server's status for the call. Once the
  // link fails (the server process ended), this and every later call return
  // Unavailable saying so, and closed() is true.
  absl::StatusOr<std::string> Call(LinkMethod method, std::string request);
  // Call with messages: the response parsed into *response.
  absl::Status Call(LinkMethod method, const google::protobuf::MessageLite& request,
                    google::protobuf::MessageLite* response);

  bool closed() const;

 private:
  LinkEnd end_;
  mutable absl::Mutex mu_;
  uint64_t next_call_ ABSL_GUARDED_BY(mu_) = 1;
  bool reading_ ABSL_GUARDED_BY(mu_) = false;
  absl::Status broken_ ABSL_GUARDED_BY(mu_);
  absl::flat_hash_map<uint64_t, LinkFrame> replies_ ABSL_GUARDED_BY(mu_);
};

}  // namespace fedsim

#endif  // FEDSIM_RPC_LOCAL_LINK_H_
