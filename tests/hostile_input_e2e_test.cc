// Hostile input on the command line (issue 15): each case was found by hand
// on the real binary, and each test here is named after what broke. The
// library-level checks sit beside the code (util/file_test.cc,
// config/scenario_file_test.cc, data/idx_test.cc, tools/flag_checks_test.cc,
// sim/run_output_test.cc); these check what the user sees: the exit code and
// the message.
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "data/dataset.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/e2e_util.h"

namespace fedsim {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;
using ::testing::Not;

// Exit codes of `fedsim`: 1 for a failed run or a bad input file, 2 for a
// usage error (wrong arguments or flags).
constexpr int kFailed = 1;
constexpr int kUsage = 2;

// A small scenario on generated data: a run takes well under a second.
constexpr char kSynthetic[] = "scenarios/fedavg_synthetic.textproto";

class HostileInputTest : public e2e::E2EFixture {
 protected:
  // Writes `bytes` to tmp_/name and returns its path.
  std::string Write(const std::string& name, const std::string& bytes) {
    const fs::path p = tmp_ / name;
    std::ofstream(p, std::ios::binary) << bytes;
    return p.string();
  }

  // A Fashion-MNIST lookalike in tmp_/name: n images of side x side per split.
  std::string FakeMnist(const std::string& name, uint32_t train_side, uint32_t test_side) {
    const fs::path dir = tmp_ / name;
    fs::create_directories(dir);
    for (auto [prefix, side] : {std::pair<std::string, uint32_t>{"train", train_side},
                                std::pair<std::string, uint32_t>{"t10k", test_side}}) {
      const uint32_t n = 40;
      std::vector<uint8_t> px(size_t{n} * side * side, 7), y(n);
      for (uint32_t i = 0; i < n; ++i) y[i] = static_cast<uint8_t>(i % 10);
      EXPECT_TRUE(
          WriteIdxFile((dir / (prefix + "-images-idx3-ubyte.gz")).string(), {n, side, side}, px)
              .ok());
      EXPECT_TRUE(WriteIdxFile((dir / (prefix + "-labels-idx1-ubyte.gz")).string(), {n}, y).ok());
    }
    return dir.string();
  }
};

// Regression: `fedsim validate /tmp` read the directory as an empty file and
// went on with the default scenario.
TEST_F(HostileInputTest, DirectoryAsScenarioFileSaysItIsADirectory) {
  std::string err;
  EXPECT_EQ(e2e::RunFedsim({"validate", tmp_.string()}, &err), kFailed);
  EXPECT_THAT(err, HasSubstr("cannot read the scenario file " + tmp_.string() +
                             ": is a directory, not a file"));
  err.clear();
  EXPECT_EQ(e2e::RunFedsim({"run", tmp_.string(), "--inprocess"}, &err), kFailed);
  EXPECT_THAT(err, HasSubstr("is a directory"));
}

// Regression: an empty file was reported as "stop is unset".
TEST_F(HostileInputTest, EmptyScenarioFileSaysItIsEmpty) {
  const std::string empty = Write("empty.textproto", "");
  std::string err;
  EXPECT_EQ(e2e::RunFedsim({"validate", empty}, &err), kFailed);
  EXPECT_THAT(err, HasSubstr(empty + ": the scenario file is empty"));
  EXPECT_THAT(err, Not(HasSubstr("has no condition")));
}

// Regression: a missing file said "cannot open the scenario file", no reason.
TEST_F(HostileInputTest, MissingScenarioFileSaysWhy) {
  const std::string missing = (tmp_ / "nope.textproto").string();
  std::string err;
  EXPECT_EQ(e2e::RunFedsim({"validate", missing}, &err), kFailed);
  EXPECT_THAT(
      err, HasSubstr("cannot read the scenario file " + missing + ": no such file or directory"));
  // A file where a folder should be (ENOTDIR), with the culprit named.
  const std::string file = Write("plain", "x");
  err.clear();
  EXPECT_EQ(e2e::RunFedsim({"validate", file + "/q.textproto"}, &err), kFailed);
  EXPECT_THAT(err, HasSubstr("not a directory (a folder on the way, " + file + ", is a file)"));
}

// Regression: a UTF-8 byte-order mark failed with "Interpreting non ascii
// codepoint 187"; with CRLF line ends too, the file validates.
TEST_F(HostileInputTest, ScenarioWithByteOrderMarkAndCrlfValidates) {
  std::string text = "\xEF\xBB\xBF";
  for (char c : e2e::ReadFile(kSynthetic)) {
    if (c == '\n') text += '\r';
    text += c;
  }
  const std::string path = Write("windows.textproto", text);
  std::string err;
  EXPECT_EQ(e2e::RunFedsim({"validate", path}, &err), 0) << err;
}

// Regression: --workers=-1 and --slots=-3 silently became the defaults.
TEST_F(HostileInputTest, NegativeCountsAreUsageErrorsNamingTheFlag) {
  std::string err;
  EXPECT_EQ(e2e::RunFedsim({"run", kSynthetic, "--workers=-1", "--slots=-3"}, &err), kUsage);
  EXPECT_THAT(err, HasSubstr("fedsim run: --workers: must be from 0 to 1024, got -1"));
  EXPECT_THAT(err, HasSubstr("fedsim run: --slots: must be from 0 to 1024, got -3"));
  err.clear();
  EXPECT_EQ(e2e::RunFedsim({"run", kSynthetic, "--inprocess", "--checkpoint_every=-5",
                            "--heartbeat_timeout=0", "--eval_threads=-1"},
                           &err),
            kUsage);
  EXPECT_THAT(err, HasSubstr("--checkpoint_every: must be from 0 to"));
  EXPECT_THAT(err, HasSubstr("--heartbeat_timeout: must be > 0, got 0"));
  EXPECT_THAT(err, HasSubstr("--eval_threads: must be from 0 to 1024, got -1"));
  err.clear();
  EXPECT_EQ(e2e::RunFedsim({"compare", "scenarios/compare/none.textproto", "--parallel=-2"}, &err),
            kUsage);
  EXPECT_THAT(err, HasSubstr("fedsim compare: --parallel: must be from 0 to 1024, got -2"));
  err.clear();
  EXPECT_EQ(e2e::RunFedsim(
                {"client", "--server=127.0.0.1:1", "--slots=-3", "--connect_timeout_s=-1"}, &err),
            kUsage);
  EXPECT_THAT(err, HasSubstr("fedsim client: --slots: must be from 0 to 1024, got -3"));
  EXPECT_THAT(err, HasSubstr("fedsim client: --connect_timeout_s: must be > 0, got -1"));
  // Not numbers at all: Abseil's parser used to answer with its own message
  // and exit 1.
  err.clear();
  EXPECT_EQ(e2e::RunFedsim({"run", kSynthetic, "--workers=abc", "--heartbeat_timeout", "soon"},
                           &err),
            kUsage);
  EXPECT_THAT(err, HasSubstr("fedsim run: --workers: 'abc' is not a whole number"));
  EXPECT_THAT(err, HasSubstr("fedsim run: --heartbeat_timeout: 'soon' is not a number"));
}

// Regression: `fedsim client --server=garbage` kept trying for 30 s. It is
// refused before any connection, as a usage error; so is a server that
// would listen on nonsense.
TEST_F(HostileInputTest, AddressThatIsNotHostAndPortIsRefusedAtOnce) {
  std::string err;
  EXPECT_EQ(e2e::RunFedsim({"client", "--server=garbage"}, &err), kUsage);
  EXPECT_THAT(err, HasSubstr("fedsim client: --server: address 'garbage' is not HOST:PORT: "
                             "no port"));
  err.clear();
  EXPECT_EQ(e2e::RunFedsim({"client"}, &err), kUsage);
  EXPECT_THAT(err, HasSubstr("--server: is required"));
  err.clear();
  EXPECT_EQ(e2e::RunFedsim({"server", "--scenario=" + std::string(kSynthetic),
                            "--listen=127.0.0.1:99999", "--no_worker_timeout=-1"},
                           &err),
            kUsage);
  EXPECT_THAT(err, HasSubstr("fedsim server: --listen: address '127.0.0.1:99999' is not "
                             "HOST:PORT: the port must be a number from 0 to 65535"));
  EXPECT_THAT(err, HasSubstr("fedsim server: --no_worker_timeout: must be > 0, got -1"));
}

// Regression: a --run_dir that is a file was said to be "not empty".
TEST_F(HostileInputTest, RunDirThatIsAFileSaysSo) {
  const std::string file = Write("taken", "some text\n");
  std::string err;
  EXPECT_EQ(e2e::RunFedsim({"run", kSynthetic, "--inprocess", "--run_dir=" + file}, &err), kFailed);
  EXPECT_THAT(err, HasSubstr("the run folder " + file + " is a file, not a folder"));
  EXPECT_THAT(err, Not(HasSubstr("not empty")));
  err.clear();
  EXPECT_EQ(e2e::RunFedsim({"run", kSynthetic, "--inprocess", "--run_dir=" + file + "/run"}, &err),
            kFailed);
  EXPECT_THAT(err, HasSubstr("Not a directory"));
}

// Regression: 32x32 training images against 28x28 test images ran to the
// end (exit 0) reading past every test image, or crashed in the forward
// pass. Now the load refuses them, naming both files and both sizes.
TEST_F(HostileInputTest, FashionMnistOfTwoImageSizesIsRefusedWhenLoaded) {
  const std::string mixed = FakeMnist("mixed", 32, 28);
  const std::vector<std::string> small = {"--set=num_clients=4",
                                          "--set=algorithm.fedavg.clients_per_round=2",
                                          "--set=stop.max_commits=1"};
  std::vector<std::string> args = {"run", "scenarios/quickstart.textproto", "--inprocess",
                                   "--run_dir=" + (tmp_ / "run").string(),
                                   "--set=dataset.fashion_mnist.dir=" + mixed};
  args.insert(args.end(), small.begin(), small.end());
  std::string err;
  EXPECT_EQ(e2e::RunFedsim(args, &err), kFailed);
  EXPECT_THAT(err, HasSubstr("Fashion-MNIST train and test images differ in size: " + mixed +
                             "/train-images-idx3-ubyte.gz holds 32x32 images, " + mixed +
                             "/t10k-images-idx3-ubyte.gz holds 28x28"));
  // Both 32x32: not what the scenario's model is built for.
  const std::string big = FakeMnist("big", 32, 32);
  args = {"validate", "scenarios/quickstart.textproto", "--check_data",
          "--set=dataset.fashion_mnist.dir=" + big};
  args.insert(args.end(), small.begin(), small.end());
  err.clear();
  EXPECT_EQ(e2e::RunFedsim(args, &err), kFailed);
  EXPECT_THAT(err, HasSubstr("hold 32x32 images, but Fashion-MNIST's are 28x28"));
  // And the same small folder at 28x28 runs.
  const std::string good = FakeMnist("good", 28, 28);
  args = {"run", "scenarios/quickstart.textproto", "--inprocess",
          "--run_dir=" + (tmp_ / "good_run").string(), "--set=dataset.fashion_mnist.dir=" + good};
  args.insert(args.end(), small.begin(), small.end());
  err.clear();
  EXPECT_EQ(e2e::RunFedsim(args, &err), 0) << err;
}

// Regression: an events.jsonl with CRLF line ends (a Windows editor, git
// autocrlf) replayed as DIVERGED at event 1.
TEST_F(HostileInputTest, ReplayOfACrlfEventLogMatches) {
  const std::string run = (tmp_ / "runs" / "syn").string();
  std::string err;
  ASSERT_EQ(
      e2e::RunFedsim(
          {"run", kSynthetic, "--inprocess", "--set=stop.max_commits=3", "--run_dir=" + run}, &err),
      0)
      << err;
  const fs::path events = fs::path(run) / "events.jsonl";
  std::string crlf = "\xEF\xBB\xBF";
  for (char c : e2e::ReadFile(events)) {
    if (c == '\n') crlf += '\r';
    crlf += c;
  }
  std::ofstream(events, std::ios::binary | std::ios::trunc) << crlf;
  err.clear();
  EXPECT_EQ(e2e::RunFedsim({"replay", run}, &err), 0) << err;
}

}  // namespace
}  // namespace fedsim
