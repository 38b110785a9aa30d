// ProblemList: what a validation pass found, as (field path, message) pairs.
//
// Code that checks a configuration section (a rule's parameters, a
// participation process, ...) lives beside the code that uses it and reports
// into a ProblemList without knowing where the values came from. The config
// layer (config/) then prefixes each problem with its origin: a file position
// "scenarios/x.textproto:12:5", a --set override or a default.
//
// Paths are dotted field names from the scenario root with indices for
// repeated fields: "algorithm.fedbuff.buffer_size", "events[2].at_s".
// Messages say what is wrong and what to change:
//   "30 is larger than concurrency 20, so the buffer can never fill; lower
//    buffer_size or raise concurrency"
//
// Not thread-safe; a plain value.
#ifndef FEDSIM_UTIL_PROBLEMS_H_
#define FEDSIM_UTIL_PROBLEMS_H_

#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace fedsim {

class ProblemList {
 public:
  struct Problem {
    std::string path;
    std::string message;
  };

  void Add(std::string path, std::string message) {
    problems_.push_back({std::move(path), std::move(message)});
  }
  bool empty() const { return problems_.empty(); }
  size_t size() const { return problems_.size(); }
  const std::vector<Problem>& problems() const { return problems_; }

  // OK when empty, else InvalidArgument with one "path: message" per line, in
  // the order found. For callers without source positions (factories).
  absl::Status ToStatus() const {
    if (problems_.empty()) return absl::OkStatus();
    std::vector<std::string> lines;
    for (const Problem& p : problems_) lines.push_back(absl::StrCat(p.path, ": ", p.message));
    return absl::InvalidArgumentError(absl::StrJoin(lines, "\n"));
  }

 private:
  std::vector<Problem> problems_;
};

}  // namespace fedsim

#endif  // FEDSIM_UTIL_PROBLEMS_H_
