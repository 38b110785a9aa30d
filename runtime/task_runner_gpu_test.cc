// TaskRunner on the GPU backend's CPU emulation: tasks from concurrent slots
// are trained in shared batches, with the same bits as alone, and within
// float tolerance of the CPU runner; adversarial tasks and evaluation run
// through the Model interface on the same device.
#include <algorithm>
#include <cmath>
#include <thread>
#include <vector>

#include "config/scenario_file.h"
#include "gtest/gtest.h"
#include "ml/gpu/backend_test_util.h"
#include "runtime/run_setup.h"
#include "runtime/task_runner.h"

namespace fedsim {
namespace {

config::Scenario Scenario(const std::string& local) {
  auto s = ParseScenarioText(
      "num_clients: 8\n"
      "dataset { synthetic { alpha: 1 beta: 1 } }\n"
      "model { mlp { hidden: 12 } }\n"
      "algorithm { fedavg { clients_per_round: 2 } }\n"
      "stop { max_commits: 1 }\n"
      "local { " +
          local + " }\n",
      "gpu.textproto", {});
  EXPECT_TRUE(s.ok()) << s.status();
  return s.ok() ? *s : config::Scenario();
}

// Runs tasks for clients 0..7 on `runner`, each from its own thread.
std::vector<TaskResult> RunAll(TaskRunner& runner, const config::Scenario& s,
                               std::span<const float> base) {
  std::vector<TaskResult> out(8);
  std::vector<std::thread> threads;
  for (uint32_t c = 0; c < 8; ++c) {
    threads.emplace_back([&, c] {
      TaskSpec t;
      t.id = c + 1;
      t.client = c;
      t.seed = 40 + c;
      t.local = s.local();
      absl::StatusOr<TaskResult> r = runner.Run(t, base);
      ASSERT_TRUE(r.ok()) << r.status();
      out[c] = std::move(*r);
    });
  }
  for (auto& t : threads) t.join();
  return out;
}

using gpu_test::RelError;

void ExpectGpuRunnerMatches(const std::string& local) {
  const config::Scenario s = Scenario(local);
  absl::StatusOr<RunData> data = BuildRunData(s, ".");
  ASSERT_TRUE(data.ok()) << data.status();
  absl::StatusOr<std::unique_ptr<Model>> m = NewModel(data->model);
  std::vector<float> base((*m)->NumParams());
  (*m)->Init(1, base);
  const DeviceSpec emulated{DeviceSpec::Kind::kEmulated, 0};
  TaskRunner cpu(&*data);
  TaskRunner batched(&*data, kDefaultClientCacheBytes, TaskDevice{emulated, 8});
  TaskRunner alone(&*data, kDefaultClientCacheBytes, TaskDevice{emulated, 1});
  EXPECT_EQ(cpu.backend(), "cpu");
  const std::vector<TaskResult> a = RunAll(cpu, s, base);
  const std::vector<TaskResult> b = RunAll(batched, s, base);
  const std::vector<TaskResult> c = RunAll(alone, s, base);
  EXPECT_NE(batched.backend(), "cpu");
  for (size_t i = 0; i < 8; ++i) {
    EXPECT_EQ(b[i].delta, c[i].delta) << "client " << i << ": batching changed the bits";
    EXPECT_EQ(b[i].metrics.at("train_loss"), c[i].metrics.at("train_loss"));
    EXPECT_EQ(b[i].num_examples, a[i].num_examples);
    EXPECT_EQ(b[i].metrics.at("steps"), a[i].metrics.at("steps"));
    EXPECT_LE(RelError(b[i].delta, a[i].delta), 2e-4) << "client " << i;
  }
}

TEST(TaskRunnerGpuTest, SgdTasksBatchWithoutChangingResults) {
  ExpectGpuRunnerMatches("epochs: 1 batch_size: 8 lr: 0.1 momentum: 0.5");
}

TEST(TaskRunnerGpuTest, SamTasksBatchWithoutChangingResults) {
  ExpectGpuRunnerMatches("steps: 5 batch_size: 6 lr: 0.05 sam { rho: 0.05 }");
}

// Adversarial training is not batched: it runs TrainLocal on the device's
// Model, with the attack's input gradients on the device too.
TEST(TaskRunnerGpuTest, AdversarialTasksRunOnTheDevicesModel) {
  ExpectGpuRunnerMatches(
      "steps: 3 batch_size: 6 lr: 0.05 adversarial { attack: PGD eps: 0.1 steps: 2 "
      "step_size: 0.05 ratio: 1 mode: REPLACE random_start: true }");
}

}  // namespace
}  // namespace fedsim
