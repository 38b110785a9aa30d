// The batched trainer on the CPU emulation: each task's result does not
// depend on who shares its batch (bit for bit), and agrees with TrainLocal
// on the Eigen model (SGD with every option, SAM), clients of different
// sizes masked, never padded.
#include "ml/gpu/batched_trainer.h"

#include <cmath>
#include <memory>
#include <numeric>
#include <vector>

#include "gtest/gtest.h"
#include "ml/gpu/backend_test_util.h"
#include "ml/local_trainer.h"
#include "ml/optimizer.h"

namespace fedsim {
namespace {

const DeviceSpec kEmulated{DeviceSpec::Kind::kEmulated, 0};

using gpu_test::RandomData;

struct Fixture {
  ModelConfig config;
  Dataset data;
  // The same rows, shared: the tasks of even clients name it as their
  // data's owner, so the trainer keeps it on the device across Trains; odd
  // clients' rows are uploaded per Train. Results must not tell.
  std::shared_ptr<const Dataset> shared;
  std::vector<float> base;
  std::vector<std::vector<uint32_t>> rows;  // per client
  std::vector<BatchedTask> tasks;
};

// Clients of 23, 4 (smaller than a batch) and 11 rows.
Fixture MakeFixture(const ModelConfig& config) {
  Fixture f;
  f.config = config;
  f.data = RandomData(config, 60, 1);
  f.shared = std::make_shared<const Dataset>(RandomData(config, 60, 1));
  absl::StatusOr<std::unique_ptr<Model>> m = NewModel(config);
  f.base.resize((*m)->NumParams());
  (*m)->Init(2, f.base);
  const size_t sizes[] = {23, 4, 11};
  uint32_t next = 0;
  for (size_t s : sizes) {
    std::vector<uint32_t> r(s);
    for (uint32_t& i : r) i = (next++ * 7) % 60;
    f.rows.push_back(std::move(r));
  }
  for (size_t c = 0; c < f.rows.size(); ++c) {
    if (c % 2 == 0) {
      f.tasks.push_back(BatchedTask{f.base, f.shared.get(), f.rows[c], 100 + c, f.shared});
    } else {
      f.tasks.push_back(BatchedTask{f.base, &f.data, f.rows[c], 100 + c, nullptr});
    }
  }
  return f;
}

std::vector<LocalTrainingResult> TrainBatched(const Fixture& f, const BatchedRecipe& recipe,
                                              std::span<const BatchedTask> tasks, int cap) {
  absl::StatusOr<std::unique_ptr<BatchedTrainer>> t =
      BatchedTrainer::Create(f.config, kEmulated, cap);
  EXPECT_TRUE(t.ok()) << t.status();
  absl::StatusOr<std::vector<LocalTrainingResult>> r = (*t)->Train(recipe, tasks);
  EXPECT_TRUE(r.ok()) << r.status();
  if (!r.ok()) return {};
  // Again on the same trainer: the shared dataset is on the device now.
  absl::StatusOr<std::vector<LocalTrainingResult>> again = (*t)->Train(recipe, tasks);
  EXPECT_TRUE(again.ok()) << again.status();
  for (size_t c = 0; again.ok() && c < r->size(); ++c) {
    EXPECT_EQ((*again)[c].delta, (*r)[c].delta) << "task " << c << " changed on a second Train";
  }
  return *r;
}

LocalTrainingResult TrainOnCpu(const Fixture& f, const BatchedRecipe& recipe, size_t c) {
  absl::StatusOr<std::unique_ptr<Model>> m = NewModel(f.config);
  absl::StatusOr<std::unique_ptr<Optimizer>> opt =
      recipe.sam_rho > 0 ? NewSamOptimizer(SamOptions{recipe.sam_rho}, recipe.sgd, f.base.size())
                         : NewSgdOptimizer(recipe.sgd, f.base.size());
  absl::StatusOr<LocalTrainingResult> r =
      TrainLocal(**m, f.base, f.data, f.rows[c], recipe.schedule, **opt, nullptr, 100 + c);
  EXPECT_TRUE(r.ok()) << r.status();
  return *r;
}

void ExpectBatchedMatches(const ModelConfig& config, const BatchedRecipe& recipe) {
  const Fixture f = MakeFixture(config);
  const std::vector<LocalTrainingResult> together = TrainBatched(f, recipe, f.tasks, 4);
  ASSERT_EQ(together.size(), f.tasks.size());
  for (size_t c = 0; c < f.tasks.size(); ++c) {
    // Alone in a trainer of its own: the same bits.
    const std::vector<LocalTrainingResult> alone =
        TrainBatched(f, recipe, std::span<const BatchedTask>(&f.tasks[c], 1), 1);
    ASSERT_EQ(alone.size(), 1u);
    EXPECT_EQ(alone[0].delta, together[c].delta) << "client " << c;
    EXPECT_EQ(alone[0].mean_loss, together[c].mean_loss) << "client " << c;
    // TrainLocal on the Eigen model: the same schedule, counts and (within
    // float tolerance) the same model.
    const LocalTrainingResult cpu = TrainOnCpu(f, recipe, c);
    EXPECT_EQ(together[c].steps, cpu.steps) << "client " << c;
    EXPECT_EQ(together[c].examples_processed, cpu.examples_processed) << "client " << c;
    EXPECT_LE(gpu_test::RelError(together[c].delta, cpu.delta), 2e-4) << "client " << c;
    EXPECT_NEAR(together[c].mean_loss, cpu.mean_loss, 1e-4 * std::abs(cpu.mean_loss))
        << "client " << c;
    double norm = 0;
    for (float d : together[c].delta) norm += std::abs(d);
    EXPECT_GT(norm, 0) << "client " << c << " did not train";
  }
}

TEST(BatchedTrainerTest, SgdMlpEpochs) {
  BatchedRecipe r;
  r.schedule.epochs = 2;
  r.schedule.batch_size = 5;
  r.sgd.lr = 0.1;
  ExpectBatchedMatches(gpu_test::SmallMlp(), r);
}

TEST(BatchedTrainerTest, SgdWithMomentumDecayAndProxInSteps) {
  BatchedRecipe r;
  r.schedule.steps = 7;
  r.schedule.batch_size = 6;
  r.sgd.lr = 0.05;
  r.sgd.momentum = 0.9;
  r.sgd.weight_decay = 1e-3;
  r.sgd.prox_mu = 0.01;
  ExpectBatchedMatches(gpu_test::SmallMlp(), r);
}

TEST(BatchedTrainerTest, SamCnn) {
  BatchedRecipe r;
  r.schedule.epochs = 1;
  r.schedule.batch_size = 8;
  r.sgd.lr = 0.05;
  r.sam_rho = 0.05;
  ExpectBatchedMatches(gpu_test::SmallCnn(), r);
}

TEST(BatchedTrainerTest, RefusesWhatTrainLocalRefuses) {
  const Fixture f = MakeFixture(gpu_test::SmallMlp());
  absl::StatusOr<std::unique_ptr<BatchedTrainer>> t =
      BatchedTrainer::Create(f.config, kEmulated, 2);
  ASSERT_TRUE(t.ok());
  BatchedRecipe r;
  EXPECT_FALSE((*t)->Train(r, f.tasks).ok());  // 3 tasks > 2
  std::vector<uint32_t> bad = {0, 60};
  BatchedTask task{f.base, &f.data, bad, 1, nullptr};
  EXPECT_FALSE((*t)->Train(r, std::span<const BatchedTask>(&task, 1)).ok());
  r.sgd.momentum = 1.5;
  EXPECT_FALSE((*t)->Train(r, std::span<const BatchedTask>(f.tasks.data(), 1)).ok());
  EXPECT_FALSE(BatchedTrainer::Create(f.config, DeviceSpec{}, 2).ok());  // CPU
}

TEST(BatchedTrainerTest, ClientsThatFitFollowsTheMemory) {
  ModelConfig c;  // the Fashion-MNIST MLP
  const int small = BatchedTrainer::ClientsThatFit(c, 10, 600, size_t{1} << 30);
  const int large = BatchedTrainer::ClientsThatFit(c, 10, 600, size_t{64} << 30);
  EXPECT_GE(small, 1);
  EXPECT_GT(large, small);
  EXPECT_LE(large, 1024);
  EXPECT_EQ(BatchedTrainer::ClientsThatFit(c, 10, 600, 1000), 1);
}

}  // namespace
}  // namespace fedsim
