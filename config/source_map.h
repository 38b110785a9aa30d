// Where the fields of a parsed configuration came from, and how a problem
// about a field is located for the user:
//
//   scenarios/x.textproto:7:19: partition.dirichlet.alpha: must be > 0, got 0; ...
//   scenarios/x.textproto: local.lr (from --set): must be > 0, got -2; ...
//   scenarios/x.textproto: stop (default): has no condition, ...
//
// Paths are dotted field names from the message root with indices for
// repeated fields: "partition.dirichlet.alpha", "events[2].at_s",
// "model.mlp.hidden[1]". Lines and columns are 1-based; a column counts bytes
// (a tab is one column), as editors do.
//
// Works for any protobuf message type: the parser (diagnostics.h) and the
// --set language (overrides.h) fill it, validation (ProblemList) reads it.
//
// Thread safety: a value; not thread-safe for concurrent writes.
#ifndef FEDSIM_CONFIG_SOURCE_MAP_H_
#define FEDSIM_CONFIG_SOURCE_MAP_H_

#include <map>
#include <optional>
#include <set>
#include <string>

#include "absl/status/status.h"
#include "util/problems.h"

namespace fedsim {

class SourceMap {
 public:
  struct Location {
    int line = 0;    // 1-based
    int column = 0;  // 1-based
  };

  SourceMap() = default;
  explicit SourceMap(std::string file) : file_(std::move(file)) {}

  // The file name used in messages ("" for text without a file).
  const std::string& file() const { return file_; }

  // Records that the field at `path` starts at `location` in the file.
  void AddParsed(const std::string& path, Location location);
  // Records that --set assigned the field at `path` (and everything under it).
  void AddOverride(const std::string& path);

  // The file location of `path` when it was written in the file and not
  // replaced by --set since. A list element without a location of its own
  // (`f: [a, b]` records one for the field) gets the field's.
  std::optional<Location> Find(const std::string& path) const;
  // True when --set assigned `path` or one of its ancestors, or brought
  // `path` into being by setting a field inside it.
  bool FromOverride(const std::string& path) const;

  // The prefix of an error about `path`:
  //   "file:line:col: path"             (written in the file)
  //   "file: path (from --set)"          (assigned by --set)
  //   "file: path (default)"             (filled in by defaults)
  // `file` is "<scenario>" when the map has no file name.
  std::string Describe(const std::string& path) const;

 private:
  std::string file_;
  std::map<std::string, Location> parsed_;
  std::set<std::string> overridden_;
};

// "<scenario>" for an empty display name, else the name.
std::string FileOrPlaceholder(const std::string& file);

// OK when `problems` is empty; else InvalidArgument with one line per
// problem, "<sources->Describe(path)>: <message>", those with a file position
// first in file order (line, column), then the others in the order found.
// `sources` may be null (then the file is "<scenario>" and nothing has a
// position).
absl::Status LocatedStatus(const ProblemList& problems, const SourceMap* sources);

}  // namespace fedsim

#endif  // FEDSIM_CONFIG_SOURCE_MAP_H_
