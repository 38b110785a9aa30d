// The small pieces of authentication both ends of the wire share: run tokens
// (a shared secret every call carries in its metadata), worker sessions
// (random secrets the server hands out at Register), the constant-time
// comparison of either, and listen/dial addresses.
//
// A run token never travels on a command line (`ps` shows those to every
// user): it comes from a file (--token_file) or the FEDSIM_TOKEN environment
// variable, which only the process's user can read.
//
// Thread safety: pure functions (ReadRunToken reads the environment and a file).
#ifndef FEDSIM_RPC_AUTH_H_
#define FEDSIM_RPC_AUTH_H_

#include <cstddef>
#include <optional>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace fedsim {

// The metadata key that carries the run token, as "Bearer TOKEN" (what
// grpcurl -H 'authorization: Bearer ...' sends).
inline constexpr char kTokenMetadataKey[] = "authorization";
// The environment variable a run token may come from.
inline constexpr char kTokenEnvVar[] = "FEDSIM_TOKEN";
// PushUpdate also names its worker, session and task in the metadata, so
// the server can refuse a stream before it reads (and gRPC buffers) a byte
// of it: gRPC 1.51 buffers a whole message, whatever its size, once the
// handler asks for it.
inline constexpr char kPushWorkerKey[] = "fedsim-worker";
inline constexpr char kPushSessionKey[] = "fedsim-session";
inline constexpr char kPushTaskKey[] = "fedsim-task";
// How many tasks the pusher would take with the answer
// (PushUpdateResponse.tasks); absent = none.
inline constexpr char kPushWantKey[] = "fedsim-want-tasks";
// A token shorter than this is refused: it could be guessed.
inline constexpr size_t kMinTokenLength = 16;

// `bytes` bytes from the kernel's random source (getrandom(2)) as 2 * bytes
// lower-case hex digits. Internal error only if the kernel refuses.
absl::StatusOr<std::string> RandomHex(size_t bytes);

// a == b in time that depends only on the lengths, not on where they differ.
bool ConstantTimeEquals(absl::string_view a, absl::string_view b);

// The run token: the content of `token_file` (surrounding white space
// trimmed) when it is not empty, else the FEDSIM_TOKEN environment variable,
// else "" (no token). Errors name the file: ReadFileToString's when it
// cannot be read (util/file.h: NotFound for a missing file, PermissionDenied,
// InvalidArgument for a directory or a file over 64 KiB),
// InvalidArgument when the token is shorter than kMinTokenLength or has
// characters other than printable ASCII without spaces (the fix is in the
// message).
absl::StatusOr<std::string> ReadRunToken(const std::string& token_file);

// The same checks on a token given directly ("" is fine: no token).
absl::Status CheckTokenFormat(absl::string_view token, absl::string_view source);

// "Bearer TOKEN".
std::string BearerValue(absl::string_view token);

// Checks the metadata value a call carried (nullopt: none) against the run's
// token (must not be empty). Unauthenticated "missing run token" or "wrong
// run token"; the message never contains either value.
absl::Status CheckBearer(std::optional<absl::string_view> value, absl::string_view token);

struct HostPort {
  std::string host;  // without brackets for IPv6 ("::1")
  int port = 0;
};

// Splits "HOST:PORT" ("[V6]:PORT" for IPv6). InvalidArgument, naming the
// address, when the host is empty or the port is not a number in 0..65535
// ("127.0.0.1:99999" is an error, not another port).
absl::StatusOr<HostPort> ParseHostPort(absl::string_view address);

// The longest socket path a "unix:PATH" address may name (sockaddr_un).
inline constexpr size_t kMaxUnixSocketPath = 107;

// The socket file of a "unix:PATH" address (a Unix-domain socket on this
// machine); nullopt for any other address.
std::optional<absl::string_view> UnixSocketPath(absl::string_view address);

// Checks an address a worker dials or a server listens on: "HOST:PORT" as
// ParseHostPort takes it, or "unix:PATH" with a path of 1..kMaxUnixSocketPath
// bytes. InvalidArgument naming the address and the fix otherwise.
absl::Status CheckAddress(absl::string_view address);

// Whether `host` names this machine only: "localhost", 127.0.0.0/8, "::1".
// 0.0.0.0 and "::" are every interface: not loopback.
bool IsLoopbackHost(absl::string_view host);

// Whether a gRPC peer ("ipv4:127.0.0.1:5000", "ipv6:[::1]:5000", with the
// brackets as is or %-escaped, "unix:/path") is on this machine.
bool IsLoopbackPeer(absl::string_view peer);

}  // namespace fedsim

#endif  // FEDSIM_RPC_AUTH_H_
