// The promise of README's "Adding an aggregation rule": a rule is one file in
// algorithms/, one oneof field and one registry row, and the config layer
// needs no edit. It holds as long as no config code names a rule: validation,
// defaults and the memory estimate reach every rule through its registry row.
// This test reads every file of config/ (tests excepted: they check rules'
// messages through the pipeline) and fails on any registered rule's name,
// in any case ("FedBuff" in a comment counts).
#include <cctype>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "algorithms/registry.h"
#include "gtest/gtest.h"

namespace fedsim {
namespace {

namespace fs = std::filesystem;

std::string Lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

bool IsTestFile(const std::string& name) {
  return name.ends_with("_test.cc") || name.ends_with("_test_util.h");
}

TEST(ConfigLayerTest, NoConfigCodeNamesARule) {
  ASSERT_TRUE(fs::exists("config/CMakeLists.txt") && fs::exists("config/validate.h"))
      << "run from the repository root (ctest does)";
  std::vector<std::string> names;
  for (const AlgorithmEntry& e : RegisteredAlgorithms())
    names.push_back(Lower(std::string(e.name)));
  ASSERT_GE(names.size(), 2u);
  int files = 0;
  for (const fs::directory_entry& entry : fs::recursive_directory_iterator("config")) {
    if (!entry.is_regular_file()) continue;
    const std::string name = entry.path().filename().string();
    const std::string ext = entry.path().extension().string();
    if (IsTestFile(name) || (ext != ".h" && ext != ".cc" && name != "CMakeLists.txt")) continue;
    ++files;
    std::ifstream in(entry.path());
    std::string line;
    for (int line_no = 1; std::getline(in, line); ++line_no) {
      const std::string lower = Lower(line);
      for (const std::string& rule : names) {
        EXPECT_EQ(lower.find(rule), std::string::npos)
            << entry.path().string() << ":" << line_no << " names the rule '" << rule
            << "': reach rules through the registry row instead\n  " << line;
      }
    }
  }
  EXPECT_GE(files, 10) << "config/ should hold the config layer's sources";
}

}  // namespace
}  // namespace fedsim
