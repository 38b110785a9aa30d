// The GPU backend end to end (issue 11), with the real binary: worker
// processes on a GPU device give the in-process GPU run's model bit for bit
// (a task's result does not depend on which tasks share its batched launch),
// and a run with a GPU worker and a CPU worker completes, its manifest
// naming both backends. On a machine with a CUDA device the GPU is the real
// one and the scenario the quickstart; elsewhere the GPU backend's CPU
// emulation and a small synthetic scenario (the emulation runs the GPU's
// arithmetic in plain loops).
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <string>
#include <vector>

#include "absl/synchronization/notification.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "ml/gpu/device.h"
#include "tests/e2e_util.h"
#include "tools/subprocess.h"

namespace fedsim {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;

class GpuE2ETest : public ::testing::Test {
 protected:
  void SetUp() override {
    tmp_ = fs::temp_directory_path() /
           ("fedsim_gpu_e2e_" + std::to_string(::getpid()) + "_" +
            ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(tmp_);
    fs::create_directories(tmp_);
    if (CudaDevicesVisible() > 0) {
      device_ = "cuda:0";
      scenario_ = "scenarios/quickstart.textproto";
      sets_ = {"--set=stop.max_commits=3"};
      // A prebuilt bundle carries the dataset (scripts/gpu-check --prebuilt).
      if (const char* dir = std::getenv("FEDSIM_FASHION_MNIST_DIR"); dir != nullptr && *dir) {
        sets_.push_back(std::string("--set=dataset.fashion_mnist.dir=") + dir);
      }
      name_ = "quickstart";
    } else {
      device_ = "emulated";
      scenario_ = (tmp_ / "small.textproto").string();
      std::ofstream(scenario_) << "name: \"gpu-small\"\n"
                                  "num_clients: 12\n"
                                  "dataset { synthetic { alpha: 1 beta: 1 } }\n"
                                  "model { mlp { hidden: 16 } }\n"
                                  "algorithm { fedavg { clients_per_round: 4 } }\n"
                                  "local { epochs: 1 batch_size: 10 lr: 0.05 }\n"
                                  "stop { max_commits: 3 }\n";
      name_ = "gpu-small";
    }
  }
  void TearDown() override { fs::remove_all(tmp_); }

  std::string Run(const std::vector<std::string>& extra, const fs::path& dir) {
    std::vector<std::string> args = {"run", scenario_, "--run_dir=" + dir.string()};
    args.insert(args.end(), sets_.begin(), sets_.end());
    args.insert(args.end(), extra.begin(), extra.end());
    std::string err;
    EXPECT_EQ(e2e::RunFedsim(args, &err), 0) << err;
    return e2e::ReadFile(dir / "manifest.json");
  }

  fs::path tmp_;
  std::string device_, scenario_, name_;
  std::vector<std::string> sets_;
};

TEST_F(GpuE2ETest, WorkerProcessesGiveTheInProcessModelBitForBit) {
  const std::string in = Run({"--inprocess", "--device=" + device_}, tmp_ / "in");
  const std::string multi =
      Run({"--workers=2", "--slots=3", "--device=" + device_}, tmp_ / "multi");
  const std::string hash = e2e::ManifestField(tmp_ / "in", "final_model_hash");
  ASSERT_FALSE(hash.empty()) << in;
  EXPECT_EQ(e2e::ManifestField(tmp_ / "multi", "final_model_hash"), hash);
  const std::string backend = device_ == "emulated" ? "host emulation" : "cuda:0 (";
  EXPECT_THAT(in, HasSubstr("\"backends\": [\n    \"" + backend));
  EXPECT_THAT(multi, HasSubstr("\"backends\": [\n    \"" + backend));
  // The CPU path computes other bits, within float tolerance: the same
  // accuracy to a point.
  const std::string cpu = Run({"--inprocess", "--device=cpu"}, tmp_ / "cpu");
  EXPECT_THAT(cpu, HasSubstr("\"backends\": [\n    \"cpu\""));
  EXPECT_NEAR(std::stod(e2e::ManifestField(tmp_ / "cpu", "final_accuracy")),
              std::stod(e2e::ManifestField(tmp_ / "in", "final_accuracy")), 0.01);
}

TEST_F(GpuE2ETest, AGpuWorkerAndACpuWorkerShareARun) {
  std::mutex mu;
  std::string address;
  absl::Notification listening;
  SubprocessSet procs([&](const std::string& line) {
    std::lock_guard<std::mutex> lock(mu);
    if (const std::string a = e2e::ListenAddress(line); !a.empty() && address.empty()) {
      address = a;
      listening.Notify();
    }
  });
  std::vector<std::string> server = {e2e::Binary(), "server", "--scenario=" + scenario_,
                                     "--listen=127.0.0.1:0",
                                     "--server_out=" + (tmp_ / "srv").string()};
  server.insert(server.end(), sets_.begin(), sets_.end());
  // On the wall clock, with each task taking its device time in real
  // seconds, so that the run lasts long enough (about 1.4 s for the small
  // scenario) for both workers to register before it ends: in virtual time
  // the first worker could finish it alone in 0.1 s.
  server.push_back("--set=clock={mode:WALL time_scale:1}");
  ASSERT_TRUE(procs.Start("server", server).ok());
  ASSERT_TRUE(listening.WaitForNotificationWithTimeout(absl::Seconds(60)));
  std::string at;
  {
    std::lock_guard<std::mutex> lock(mu);
    at = address;
  }
  ASSERT_TRUE(procs
                  .Start("gpu", {e2e::Binary(), "client", "--server=" + at, "--slots=4",
                                 "--device=" + device_})
                  .ok());
  ASSERT_TRUE(
      procs.Start("cpu", {e2e::Binary(), "client", "--server=" + at, "--slots=1", "--device=cpu"})
          .ok());
  procs.WaitAll(600);
  for (const auto& child : procs.children()) {
    ASSERT_EQ(child.exit_code, 0) << procs.DescribeFailures();
  }
  const std::string manifest = e2e::ReadFile(tmp_ / "srv" / name_ / "manifest.json");
  EXPECT_THAT(manifest, HasSubstr("\"cpu\""));
  EXPECT_THAT(manifest, HasSubstr(device_ == "emulated" ? "\"host emulation\"" : "\"cuda:0 ("));
}

TEST_F(GpuE2ETest, ACudaDeviceThatIsNotThereIsRefused) {
  if (CudaDevicesVisible() > 0) GTEST_SKIP() << "this machine has a GPU";
  std::string err;
  EXPECT_EQ(e2e::RunFedsim({"client", "--server=127.0.0.1:1", "--device=cuda:0"}, &err), 2);
  EXPECT_THAT(err, HasSubstr("--device=cpu"));
  err.clear();
  EXPECT_EQ(e2e::RunFedsim({"train", "--device=cuda", "--epochs=1"}, &err), 2);
  // A build with the CUDA backend finds no device; one without says so.
  EXPECT_THAT(err, ::testing::AnyOf(HasSubstr("no CUDA device"),
                                    HasSubstr("built without the CUDA backend")));
  err.clear();
  EXPECT_EQ(e2e::RunFedsim({"client", "--server=127.0.0.1:1", "--device=tpu"}, &err), 2);
  EXPECT_THAT(err, HasSubstr("cuda:N"));
}

}  // namespace
}  // namespace fedsim
