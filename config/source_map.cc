#include "config/source_map.h"

#include <algorithm>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"

namespace fedsim {

void SourceMap::AddParsed(const std::string& path, Location location) { parsed_[path] = location; }

void SourceMap::AddOverride(const std::string& path) { overridden_.insert(path); }

bool SourceMap::FromOverride(const std::string& path) const {
  for (const std::string& o : overridden_) {
    if (path == o) return true;
    if (path.size() > o.size() && path.compare(0, o.size(), o) == 0 &&
        (path[o.size()] == '.' || path[o.size()] == '[')) {
      return true;
    }
    // A message that --set brought into being by setting a field inside it.
    if (o.size() > path.size() && o.compare(0, path.size(), path) == 0 &&
        (o[path.size()] == '.' || o[path.size()] == '[') && parsed_.count(path) == 0) {
      return true;
    }
  }
  return false;
}

std::optional<SourceMap::Location> SourceMap::Find(const std::string& path) const {
  if (FromOverride(path)) return std::nullopt;
  auto it = parsed_.find(path);
  if (it == parsed_.end() && !path.empty() && path.back() == ']') {
    const size_t b = path.rfind('[');
    if (b != std::string::npos) it = parsed_.find(path.substr(0, b));
  }
  if (it == parsed_.end()) return std::nullopt;
  return it->second;
}

std::string SourceMap::Describe(const std::string& path) const {
  const std::string file = FileOrPlaceholder(file_);
  if (auto loc = Find(path)) {
    return absl::StrCat(file, ":", loc->line, ":", loc->column, ": ", path);
  }
  if (FromOverride(path)) return absl::StrCat(file, ": ", path, " (from --set)");
  return absl::StrCat(file, ": ", path, " (default)");
}

std::string FileOrPlaceholder(const std::string& file) {
  return file.empty() ? std::string("<scenario>") : file;
}

absl::Status LocatedStatus(const ProblemList& problems, const SourceMap* sources) {
  if (problems.empty()) return absl::OkStatus();
  const SourceMap none;
  const SourceMap& map = sources != nullptr ? *sources : none;
  // (line, column) for sorting; problems without a place go last, in order.
  std::vector<std::pair<std::pair<int, int>, std::string>> located;
  for (const ProblemList::Problem& p : problems.problems()) {
    std::pair<int, int> key = {1 << 30, 0};
    if (auto loc = map.Find(p.path)) key = {loc->line, loc->column};
    located.emplace_back(key, absl::StrCat(map.Describe(p.path), ": ", p.message));
  }
  std::stable_sort(located.begin(), located.end(),
                   [](const auto& a, const auto& b) { return a.first < b.first; });
  std::vector<std::string> lines;
  for (auto& l : located) lines.push_back(std::move(l.second));
  return absl::InvalidArgumentError(absl::StrJoin(lines, "\n"));
}

}  // namespace fedsim
