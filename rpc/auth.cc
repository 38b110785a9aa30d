#include "rpc/auth.h"

#include <sys/random.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/str_split.h"
#include "util/file.h"

namespace fedsim {

absl::StatusOr<std::string> RandomHex(size_t bytes) {
  std::vector<unsigned char> raw(bytes);
  size_t got = 0;
  while (got < bytes) {
    const ssize_t n = getrandom(raw.data() + got, bytes - got, 0);
    if (n < 0) {
      if (errno == EINTR) continue;
      return absl::InternalError(absl::StrCat("getrandom: ", std::strerror(errno)));
    }
    got += static_cast<size_t>(n);
  }
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out(2 * bytes, '0');
  for (size_t i = 0; i < bytes; ++i) {
    out[2 * i] = kHex[raw[i] >> 4];
    out[2 * i + 1] = kHex[raw[i] & 15];
  }
  return out;
}

bool ConstantTimeEquals(absl::string_view a, absl::string_view b) {
  // Every byte of `a` is looked at whatever `b` holds; the lengths are not
  // secret (tokens and sessions have public formats).
  unsigned char diff = a.size() == b.size() ? 0 : 1;
  for (size_t i = 0; i < a.size(); ++i) {
    const unsigned char other = i < b.size() ? static_cast<unsigned char>(b[i]) : 0;
    diff |= static_cast<unsigned char>(a[i]) ^ other;
  }
  // The volatile read keeps the compiler from turning the loop into an
  // early-exit comparison.
  volatile unsigned char result = diff;
  return result == 0;
}

absl::Status CheckTokenFormat(absl::string_view token, absl::string_view source) {
  if (token.empty()) return absl::OkStatus();
  for (char c : token) {
    if (c <= ' ' || c > '~') {
      return absl::InvalidArgumentError(
          absl::StrCat("the run token from ", source,
                       " has a character that is not printable ASCII or is a space; make one with: "
                       "openssl rand -hex 32"));
    }
  }
  if (token.size() < kMinTokenLength) {
    return absl::InvalidArgumentError(absl::StrCat(
        "the run token from ", source, " has ", token.size(), " characters, fewer than ",
        kMinTokenLength, " (it could be guessed); make one with: openssl rand -hex 32"));
  }
  return absl::OkStatus();
}

absl::StatusOr<std::string> ReadRunToken(const std::string& token_file) {
  if (!token_file.empty()) {
    absl::StatusOr<std::string> text =
        ReadFileToString(token_file, {.what = "the run token file", .max_bytes = 1 << 16});
    if (!text.ok()) return text.status();
    std::string token(absl::StripAsciiWhitespace(*text));
    if (token.empty()) {
      return absl::InvalidArgumentError(
          absl::StrCat("the run token file ", token_file, " is empty"));
    }
    absl::Status format = CheckTokenFormat(token, token_file);
    if (!format.ok()) return format;
    return token;
  }
  const char* env = std::getenv(kTokenEnvVar);
  if (env == nullptr) return std::string();
  std::string token(absl::StripAsciiWhitespace(env));
  absl::Status format = CheckTokenFormat(token, absl::StrCat("$", kTokenEnvVar));
  if (!format.ok()) return format;
  return token;
}

std::string BearerValue(absl::string_view token) { return absl::StrCat("Bearer ", token); }

absl::Status CheckBearer(std::optional<absl::string_view> value, absl::string_view token) {
  if (!value.has_value() || value->empty()) {
    return absl::UnauthenticatedError(
        "missing run token: this server needs one (--token_file or $FEDSIM_TOKEN)");
  }
  absl::string_view given = *value;
  constexpr absl::string_view kBearer = "Bearer ";
  if (absl::StartsWith(given, kBearer)) given.remove_prefix(kBearer.size());
  if (!ConstantTimeEquals(token, given)) {
    return absl::UnauthenticatedError("wrong run token");
  }
  return absl::OkStatus();
}

absl::StatusOr<HostPort> ParseHostPort(absl::string_view address) {
  auto bad = [&](absl::string_view why) {
    return absl::InvalidArgumentError(
        absl::StrCat("address '", address, "' is not HOST:PORT: ", why));
  };
  HostPort out;
  absl::string_view port;
  if (absl::StartsWith(address, "[")) {
    const size_t close = address.find(']');
    if (close == absl::string_view::npos || close + 1 >= address.size() ||
        address[close + 1] != ':') {
      return bad("an IPv6 host is written [HOST]:PORT");
    }
    out.host = std::string(address.substr(1, close - 1));
    port = address.substr(close + 2);
  } else {
    const size_t colon = address.rfind(':');
    if (colon == absl::string_view::npos) return bad("no port");
    out.host = std::string(address.substr(0, colon));
    port = address.substr(colon + 1);
    if (absl::StrContains(out.host, ':')) return bad("write an IPv6 host as [HOST]:PORT");
  }
  if (out.host.empty()) return bad("no host (use 0.0.0.0 for every interface)");
  uint32_t value = 0;
  if (port.empty() || !absl::SimpleAtoi(port, &value) || port[0] == '+' || port[0] == '-' ||
      value > 65535) {
    return bad(absl::StrCat("the port must be a number from 0 to 65535, got '", port, "'"));
  }
  out.port = static_cast<int>(value);
  return out;
}

std::optional<absl::string_view> UnixSocketPath(absl::string_view address) {
  if (!absl::ConsumePrefix(&address, "unix:")) return std::nullopt;
  return address;
}

absl::Status CheckAddress(absl::string_view address) {
  if (std::optional<absl::string_view> path = UnixSocketPath(address); path.has_value()) {
    if (path->empty() || path->size() > kMaxUnixSocketPath) {
      return absl::InvalidArgumentError(
          absl::StrCat("address '", address, "' is not unix:PATH: the socket path must have 1 to ",
                       kMaxUnixSocketPath, " bytes, got ", path->size()));
    }
    return absl::OkStatus();
  }
  return ParseHostPort(address).status();
}

bool IsLoopbackHost(absl::string_view host) {
  if (absl::EqualsIgnoreCase(host, "localhost") || host == "::1") return true;
  std::vector<absl::string_view> parts = absl::StrSplit(host, '.');
  if (parts.size() != 4) return false;
  for (absl::string_view p : parts) {
    uint32_t v = 0;
    if (p.empty() || !absl::SimpleAtoi(p, &v) || v > 255) return false;
  }
  return parts[0] == "127";
}

bool IsLoopbackPeer(absl::string_view peer) {
  if (absl::StartsWith(peer, "unix:") || absl::StartsWith(peer, "unix-abstract:")) return true;
  if (absl::ConsumePrefix(&peer, "ipv4:")) {
    const size_t colon = peer.rfind(':');
    return colon != absl::string_view::npos && IsLoopbackHost(peer.substr(0, colon));
  }
  if (!absl::ConsumePrefix(&peer, "ipv6:")) return false;
  const std::string host = absl::StrReplaceAll(peer, {{"%5B", "["}, {"%5D", "]"}});
  const size_t close = host.rfind(']');
  return !host.empty() && host[0] == '[' && close != std::string::npos &&
         IsLoopbackHost(absl::string_view(host).substr(1, close - 1));
}

}  // namespace fedsim
