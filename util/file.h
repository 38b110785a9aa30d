// Reading a whole file into memory, with errors a user can act on: the one
// place that turns "open failed" into words. Scenario files, comparison
// files, run folders (events.jsonl, manifest.json, scenario.textproto),
// checkpoints, CSV inputs, PEM files and token files all come through here,
// so each says what is wrong the same way:
//
//   cannot read runs/x/manifest.json: no such file or directory
//   cannot read /etc/fedsim/token: permission denied
//   cannot read /tmp: is a directory, not a file
//   cannot read a.textproto/b.textproto: not a directory (a folder on the
//       way, a.textproto, is a file)
//
// Callers put what the file is for in front or behind ("the scenario file",
// "is this a run folder written by 'fedsim run'?").
//
// Thread safety: free functions without shared state; safe from any thread.
#ifndef FEDSIM_UTIL_FILE_H_
#define FEDSIM_UTIL_FILE_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace fedsim {

// The most ReadFileToString reads unless told otherwise (1 GiB): far above
// any file fedsim reads whole, and a bound for /dev/zero given by mistake.
inline constexpr uint64_t kDefaultMaxFileBytes = uint64_t{1} << 30;

// An errno value in words, lower-case as messages print them mid-sentence:
// ENOENT "no such file or directory", EACCES "permission denied", EISDIR "is
// a directory", ENOTDIR "not a directory", ... (strerror's text with its
// first letter lowered; "error <n>" for a number it does not know).
std::string ErrnoText(int err);

// How ReadFileToString reads.
struct ReadFileOptions {
  // What the file is, for messages: with "the scenario file" they read
  // "cannot read the scenario file <path>: ...". Default: "" ("cannot read
  // <path>: ...").
  std::string what;
  // Refuse a file larger than this. Default: kDefaultMaxFileBytes.
  uint64_t max_bytes = kDefaultMaxFileBytes;
};

// The status for `path` that could not be opened or read because of `err`
// (an errno value), with the message "cannot read [<what> ]<path>: <why>":
//   ENOENT           NotFound          "no such file or directory"
//   ENOTDIR          NotFound          "not a directory (a folder on the way, <p>, is a file)"
//                                      (<p> found by walking up `path`;
//                                      without the parenthesis when none is)
//   EISDIR           InvalidArgument   "is a directory, not a file"
//   EACCES, EPERM    PermissionDenied  "permission denied"
//   anything else    Unavailable       ErrnoText(err)
// Exposed so that tests (which run as root, where EACCES never happens) can
// check each message, and for readers that open files themselves.
absl::Status FileReadError(const std::string& path, int err, absl::string_view what = "");

// The whole content of the file at `path`, byte for byte (no newline or
// byte-order mark handling: that is the format's business).
// Errors: FileReadError's for a file that cannot be opened or read, also for
// a directory (which open(2) accepts); InvalidArgument "cannot read [<what> ]
// <path>: it holds more than <max_bytes> bytes; is it the right file?" when
// the file is larger than options.max_bytes. Reads devices and pipes too (up
// to max_bytes).
absl::StatusOr<std::string> ReadFileToString(const std::string& path,
                                             const ReadFileOptions& options = {});

// The UTF-8 byte-order mark (EF BB BF). Windows editors and spreadsheet
// programs write one at the start of "UTF-8" text; in a UTF-8 file it carries
// no meaning and editors do not show it, so every text format fedsim reads
// (scenarios, comparisons, CSV, JSON lines) skips it at the very start.
inline constexpr absl::string_view kUtf8ByteOrderMark = "\xEF\xBB\xBF";

// `text` without a byte-order mark at its start (unchanged when it has none).
inline absl::string_view SkipByteOrderMark(absl::string_view text) {
  if (text.substr(0, kUtf8ByteOrderMark.size()) == kUtf8ByteOrderMark) {
    text.remove_prefix(kUtf8ByteOrderMark.size());
  }
  return text;
}

// Writes all of [data, data + size) to the open descriptor `fd`, retrying
// short writes and EINTR. False on any other error (errno says which).
bool WriteAllToFd(int fd, const void* data, size_t size);

// Writes `text` as the whole content of `path` (created, or truncated).
// Errors: PermissionDenied "cannot write <path>: <reason>" when it cannot be
// opened (no such folder, no permission); DataLoss when a write or the close
// fails (disk full).
absl::Status WriteTextFile(const std::string& path, absl::string_view text);

// The lines of a text file written on any system: a byte-order mark at the
// start is skipped and a '\r' before each '\n' dropped (Windows line ends).
// Line i of the result is line i + 1 of the file, as editors number them; a
// last line without '\n' counts, and a final '\n' starts no empty line.
// The views point into `text`.
std::vector<absl::string_view> TextLines(absl::string_view text);

}  // namespace fedsim

#endif  // FEDSIM_UTIL_FILE_H_
