// End-to-end regression tests of issue 13's deployment checks, on the real
// `fedsim` binary: a replay that checks the saved model, and a server that
// will not listen on every interface without TLS and a token.
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/e2e_util.h"
#include "tools/subprocess.h"

namespace fedsim {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;

class SecurityE2ETest : public e2e::E2EFixture {
 protected:
  // Runs fedsim to completion; returns its exit code, stdout and stderr
  // (the children's output is one stream) in *out.
  int RunFedsim(const std::vector<std::string>& args, std::string* out) {
    SubprocessSet set;
    std::vector<std::string> argv = {"/bin/sh", "-c", ""};
    std::string command = std::string(FEDSIM_BINARY);
    for (const std::string& a : args) command += " '" + a + "'";
    argv[2] = command + " 1>&2";  // stdout too, into the captured stream
    auto started = set.Start("fedsim", argv);
    EXPECT_TRUE(started.ok()) << started.status();
    set.WaitAll(300);
    auto c = set.children()[0];
    for (auto& l : c.stderr_tail) *out += l + "\n";
    return c.exit_code;
  }

};

// Regression: `fedsim replay` printed MATCH for a run whose final_model.bin
// was altered (it recomputed the model, never checked the saved one).
TEST_F(SecurityE2ETest, ReplayRefusesARunWhoseSavedModelIsNotTheManifests) {
  const std::string run = (tmp_ / "run").string();
  std::string out;
  ASSERT_EQ(RunFedsim({"run", "scenarios/quickstart.textproto", "--inprocess", "--slots=2",
                       "--set=stop.max_commits=1", "--run_dir=" + run},
                      &out),
            0)
      << out;
  out.clear();
  ASSERT_EQ(RunFedsim({"replay", run, "--out=" + (tmp_ / "replays").string()}, &out), 0) << out;
  EXPECT_THAT(out, HasSubstr("MATCH"));

  {  // One bit of one weight flipped.
    std::fstream f(run + "/final_model.bin", std::ios::in | std::ios::out | std::ios::binary);
    f.seekg(1000);
    char c = 0;
    f.read(&c, 1);
    c ^= 1;
    f.seekp(1000);
    f.write(&c, 1);
  }
  out.clear();
  EXPECT_EQ(RunFedsim({"replay", run, "--out=" + (tmp_ / "replays2").string()}, &out), 1);
  EXPECT_THAT(out, HasSubstr("MISMATCH: " + run + "/final_model.bin has sha256"));
  EXPECT_THAT(out, ::testing::Not(HasSubstr(": MATCH")));

  fs::resize_file(run + "/final_model.bin", 100);  // what a full disk used to leave
  out.clear();
  EXPECT_EQ(RunFedsim({"replay", run, "--out=" + (tmp_ / "replays3").string()}, &out), 1);
  EXPECT_THAT(out, HasSubstr("final_model.bin cannot be read"));
}

// Regression: `fedsim server` listened on 0.0.0.0 with no encryption and no
// authentication; and --listen=127.0.0.1:99999 listened on another port.
TEST_F(SecurityE2ETest, ServerRefusesEveryInterfaceWithoutTlsAndTokenAndBadPorts) {
  std::string out;
  EXPECT_EQ(RunFedsim({"server", "--scenario=scenarios/quickstart.textproto", "--listen=0.0.0.0:0",
                       "--server_out=" + tmp_.string()},
                      &out),
            1);
  EXPECT_THAT(out, HasSubstr("refusing to listen on 0.0.0.0:0 without TLS"));
  EXPECT_THAT(out, HasSubstr("--insecure"));
  out.clear();
  // A port out of range is a usage error (exit 2), found before the scenario
  // loads (tools/flag_checks.h).
  EXPECT_EQ(RunFedsim({"server", "--scenario=scenarios/quickstart.textproto",
                       "--listen=127.0.0.1:99999", "--server_out=" + tmp_.string()},
                      &out),
            2);
  EXPECT_THAT(out, HasSubstr("the port must be a number from 0 to 65535, got '99999'"));
}

}  // namespace
}  // namespace fedsim
