// The dependency direction of DESIGN.md, checked on every build:
//   tools -> sim/server/client -> rpc/config/runtime -> algorithms -> ml/data
//         -> core/proto/util
// (compare/ and report/ sit at the top with tools/: tools -> report -> compare -> config.)
// Every project include ("folder/file.h") in a library folder must name a
// folder that folder may depend on. A new folder must be added to kAllowed.
#include <filesystem>
#include <fstream>
#include <map>
#include <regex>
#include <set>
#include <string>
#include <vector>

#include "gtest/gtest.h"

namespace fedsim {
namespace {

namespace fs = std::filesystem;

// folder -> the folders its files may include (itself implied).
const std::map<std::string, std::set<std::string>>& Allowed() {
  static const auto* m = new std::map<std::string, std::set<std::string>>{
      {"util", {}},
      {"proto", {}},
      {"core", {"util", "proto"}},
      {"data", {"util"}},
      {"ml", {"data", "util"}},
      {"algorithms", {"core", "util", "proto"}},
      {"runtime", {"core", "ml", "data", "util", "proto"}},
      {"config", {"algorithms", "runtime", "core", "ml", "data", "util", "proto"}},
      {"rpc", {"core", "util", "proto"}},
      {"server", {"rpc", "core", "util", "proto"}},
      {"client", {"rpc", "config", "runtime", "core", "ml", "data", "util", "proto"}},
      {"sim",
       {"config", "runtime", "algorithms", "core", "ml", "data", "util", "proto"}},
      // Top-level consumers beside tools/: comparisons read scenarios and
      // finished runs; reports read what comparisons and runs write.
      {"compare", {"config", "util", "proto"}},
      {"report", {"compare", "util", "proto"}},
  };
  return *m;
}

// Folders that may include anything (entry points, tests, benchmarks).
const std::set<std::string>& Unrestricted() {
  static const auto* s = new std::set<std::string>{"tools", "tests", "bench", "scripts",
                                                   "scenarios", "cmake", "deploy", "docs"};
  return *s;
}

TEST(LayeringTest, NoIncludeRunsBackUp) {
  const fs::path root = fs::current_path();
  ASSERT_TRUE(fs::exists(root / "CMakeLists.txt")) << "run from the repository root";
  const std::regex include_re(R"re(^\s*#\s*include\s+"([a-z_]+)/)re");
  int files = 0;
  for (const fs::directory_entry& top : fs::directory_iterator(root)) {
    if (!top.is_directory()) continue;
    const std::string folder = top.path().filename().string();
    if (folder.empty() || folder[0] == '.' || folder.rfind("build", 0) == 0 ||
        Unrestricted().count(folder) > 0 || folder == "runs" || folder == "out") {
      continue;
    }
    bool has_sources = false;
    for (const fs::directory_entry& f : fs::recursive_directory_iterator(top.path())) {
      const std::string ext = f.path().extension().string();
      if (ext == ".cc" || ext == ".h" || ext == ".cu") has_sources = true;
    }
    if (!has_sources) continue;
    auto allowed = Allowed().find(folder);
    ASSERT_NE(allowed, Allowed().end())
        << "folder '" << folder << "' has sources but no row in kAllowed (" << __FILE__ << ")";
    for (const fs::directory_entry& f : fs::recursive_directory_iterator(top.path())) {
      const std::string ext = f.path().extension().string();
      if (ext != ".cc" && ext != ".h" && ext != ".cu") continue;
      // A test may use helpers from above its folder (tests/ fakes, config
      // parsing); the rule is for the library code.
      const std::string name = f.path().filename().string();
      if (name.find("_test.") != std::string::npos || name.find("_test_util") != std::string::npos) {
        continue;
      }
      ++files;
      std::ifstream in(f.path());
      std::string line;
      int number = 0;
      while (std::getline(in, line)) {
        ++number;
        std::smatch m;
        if (!std::regex_search(line, m, include_re)) continue;
        const std::string dep = m[1];
        if (dep == folder || allowed->second.count(dep) > 0) continue;
        if (Allowed().count(dep) == 0 && Unrestricted().count(dep) == 0) continue;  // e.g. "absl/"
        ADD_FAILURE() << fs::relative(f.path(), root).string() << ":" << number << ": " << folder
                      << "/ may not include " << dep << "/ (" << line << ")";
      }
    }
  }
  EXPECT_GT(files, 50) << "found too few source files: is the working directory the repo root?";
}

}  // namespace
}  // namespace fedsim
