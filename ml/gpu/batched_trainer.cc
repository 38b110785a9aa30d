#include "ml/gpu/batched_trainer.h"

#include <algorithm>
#include <cmath>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "ml/optimizer.h"
#include "util/rng.h"

namespace fedsim {
namespace {

enum Slot {
  kParams,
  kGrad,
  kBase,
  kVelocity,
  kPerturbed,
  kLoss,
  kLossSums,
  kDataX,
  kDataY,
  kClientX,
  kClientY,
  kIndex,
  kRows,
  kNumSlots
};

// One task's batches: for each step, the client's local row numbers.
struct TaskPlan {
  uint64_t steps = 0;
  uint64_t examples = 0;
  std::vector<int> rows;       // per step
  std::vector<int32_t> index;  // per step, batch entries (rows[s] used)
};

// TrainLocal's batch order (ml/local_trainer.cc) over the client's local
// positions 0..rows-1: the same Rng streams shuffle an array of the same
// length, so position k of an epoch is indices[order[k]].
TaskPlan PlanTask(const LocalSchedule& schedule, size_t rows, uint64_t seed, int batch_cap) {
  TaskPlan plan;
  const size_t batch = std::min<size_t>(schedule.batch_size, rows);
  plan.steps = schedule.StepsFor(rows);
  plan.rows.resize(plan.steps);
  plan.index.assign(plan.steps * batch_cap, 0);
  std::vector<uint32_t> order(rows);
  uint64_t epoch = 0;
  size_t pos = rows;
  for (uint64_t s = 0; s < plan.steps; ++s) {
    if (pos >= rows) {
      for (size_t i = 0; i < rows; ++i) order[i] = static_cast<uint32_t>(i);
      Rng(seed, "batch_order", epoch).Shuffle(std::span<uint32_t>(order));
      ++epoch;
      pos = 0;
    }
    const size_t n = std::min(batch, rows - pos);
    plan.rows[s] = static_cast<int>(n);
    for (size_t r = 0; r < n; ++r)
      plan.index[s * batch_cap + r] = static_cast<int32_t>(order[pos + r]);
    pos += n;
    plan.examples += n;
  }
  return plan;
}

}  // namespace

absl::StatusOr<std::unique_ptr<BatchedTrainer>> BatchedTrainer::Create(const ModelConfig& config,
                                                                       const DeviceSpec& device,
                                                                       int max_clients) {
  if (!device.is_gpu_backend()) {
    return absl::InvalidArgumentError(
        absl::StrCat("batched training needs a GPU backend, not ", device.ToString()));
  }
  if (max_clients <= 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("batched training: max_clients must be > 0, got ", max_clients));
  }
  if (absl::Status s = CheckDevice(device); !s.ok()) return s;
  absl::StatusOr<std::unique_ptr<Model>> cpu = NewModel(config);
  if (!cpu.ok()) return cpu.status();
  return std::unique_ptr<BatchedTrainer>(new BatchedTrainer(config, device, max_clients));
}

int BatchedTrainer::ClientsThatFit(const ModelConfig& config, int batch_size,
                                   size_t rows_per_client, size_t free_bytes) {
  const gpu::NetSpec spec = NetSpecFor(config);
  const size_t b = static_cast<size_t>(std::max(batch_size, 1));
  size_t floats = 6 * spec.num_params;  // params, grads, anchor, velocity, SAM point, slack
  size_t max_dim = static_cast<size_t>(spec.input_dim);
  size_t col = 0;
  for (const gpu::NetLayer& l : spec.layers) {
    floats += b * static_cast<size_t>(l.out_dim()) * 2;  // activation (+ pool winners)
    max_dim = std::max<size_t>(max_dim, std::max(l.in_dim(), l.out_dim()));
    if (l.kind == gpu::NetLayer::Kind::kConv) {
      col = std::max<size_t>(col,
                             static_cast<size_t>(l.in_h) * l.in_w * l.kernel * l.kernel * l.in_c);
    }
  }
  floats += b * (2 * max_dim + 2 * col + spec.input_dim + 4 * spec.num_classes);
  floats += rows_per_client * (static_cast<size_t>(spec.input_dim) + 1);
  const size_t per_client = floats * sizeof(float) + 4096;
  const size_t usable = free_bytes / 4 * 3;
  return static_cast<int>(std::clamp<size_t>(usable / per_client, 1, 1024));
}

std::string BatchedTrainer::backend() const {
  return net_ != nullptr ? net_->backend() : device_.ToString();
}

BatchedTrainer::~BatchedTrainer() { ReleaseBuffers(); }

void BatchedTrainer::ReleaseBuffers() {
  if (net_ != nullptr) {
    for (auto& [p, bytes] : buffers_) net_->Free(p);
    net_->FreeHost(staging_);
    for (DeviceData& d : datasets_) {
      net_->Free(d.x);
      net_->Free(d.y);
    }
  }
  buffers_.clear();
  staging_ = nullptr;
  staging_bytes_ = 0;
  datasets_.clear();
  datasets_bytes_ = 0;
}

const BatchedTrainer::DeviceData* BatchedTrainer::DeviceDataset(
    const std::shared_ptr<const Dataset>& owner) {
  for (DeviceData& d : datasets_) {
    if (d.dataset == owner) {
      d.last_use = trains_;
      return &d;
    }
  }
  if (datasets_cap_ == 0) {
    // A quarter of the free memory, at most 8 GiB: room for Fashion-MNIST
    // (188 MB as floats) many times over, and for the nets.
    datasets_cap_ =
        std::max<size_t>(std::min<size_t>(DeviceFreeMemory(device_) / 4, size_t{8} << 30), 1);
  }
  const size_t dim = static_cast<size_t>(owner->dim());
  const size_t rows = owner->size();
  const size_t bytes = rows * (dim * sizeof(float) + sizeof(int32_t));
  if (bytes > datasets_cap_ || rows == 0) return nullptr;
  // Least recently used first, never one this Train uses.
  while (datasets_bytes_ + bytes > datasets_cap_) {
    auto oldest = datasets_.end();
    for (auto it = datasets_.begin(); it != datasets_.end(); ++it) {
      if (it->last_use < trains_ &&
          (oldest == datasets_.end() || it->last_use < oldest->last_use)) {
        oldest = it;
      }
    }
    if (oldest == datasets_.end()) return nullptr;
    net_->Free(oldest->x);
    net_->Free(oldest->y);
    datasets_bytes_ -= oldest->bytes;
    datasets_.erase(oldest);
  }
  DeviceData d{owner, net_->AllocArray<float>(rows * dim), net_->AllocArray<int32_t>(rows), bytes,
               trains_};
  // Through page-locked staging, in chunks of up to 8192 rows.
  const size_t chunk = std::min<size_t>(rows, 8192);
  auto* stage = static_cast<char*>(Staging(chunk * (dim * sizeof(float) + sizeof(int32_t))));
  if (d.x == nullptr || d.y == nullptr || stage == nullptr) {
    net_->Free(d.x);
    net_->Free(d.y);
    return nullptr;
  }
  auto* sx = reinterpret_cast<float*>(stage);
  auto* sy = reinterpret_cast<int32_t*>(stage + chunk * dim * sizeof(float));
  for (size_t begin = 0; begin < rows; begin += chunk) {
    const size_t end = std::min(rows, begin + chunk);
    owner->GatherRange(begin, end, sx, sy);
    net_->Upload(d.x + begin * dim, sx, (end - begin) * dim * sizeof(float));
    net_->Upload(d.y + begin, sy, (end - begin) * sizeof(int32_t));
  }
  datasets_bytes_ += bytes;
  datasets_.push_back(std::move(d));
  return &datasets_.back();
}

void* BatchedTrainer::Staging(size_t bytes) {
  if (staging_ != nullptr && staging_bytes_ >= bytes) return staging_;
  net_->FreeHost(staging_);
  // Grown by half again, so that a slowly growing need reallocates rarely.
  const size_t want = std::max(bytes, staging_bytes_ + staging_bytes_ / 2);
  staging_ = net_->AllocHost(want);
  staging_bytes_ = staging_ != nullptr ? want : 0;
  return staging_;
}

absl::Status BatchedTrainer::EnsureNet(int batch) {
  if (net_ != nullptr && net_->max_rows() >= batch) return absl::OkStatus();
  ReleaseBuffers();
  net_.reset();
  absl::StatusOr<std::unique_ptr<gpu::GpuNet>> net =
      NewGpuNet(config_, device_, max_clients_, batch);
  if (!net.ok()) return net.status();
  net_ = std::move(*net);
  buffers_.assign(kNumSlots, {nullptr, 0});
  return absl::OkStatus();
}

void* BatchedTrainer::Buffer(int slot, size_t bytes) {
  auto& [p, size] = buffers_[slot];
  if (size >= bytes && p != nullptr) return p;
  net_->Free(p);
  p = net_->Alloc(std::max<size_t>(bytes, 1));
  size = p != nullptr ? bytes : 0;
  return p;
}

absl::StatusOr<std::vector<LocalTrainingResult>> BatchedTrainer::Train(
    const BatchedRecipe& recipe, std::span<const BatchedTask> tasks) {
  const int c_count = static_cast<int>(tasks.size());
  if (c_count == 0) return std::vector<LocalTrainingResult>{};
  if (c_count > max_clients_) {
    return absl::InvalidArgumentError(
        absl::StrCat("batched training: ", c_count, " tasks, at most ", max_clients_));
  }
  // The checks of NewSgdOptimizer / NewSamOptimizer and TrainLocal.
  if (recipe.sam_rho > 0) {
    absl::StatusOr<std::unique_ptr<Optimizer>> check =
        NewSamOptimizer(SamOptions{recipe.sam_rho}, recipe.sgd, 1);
    if (!check.ok()) return check.status();
  } else {
    absl::StatusOr<std::unique_ptr<Optimizer>> check = NewSgdOptimizer(recipe.sgd, 1);
    if (!check.ok()) return check.status();
    if (recipe.sam_rho < 0 || std::isnan(recipe.sam_rho)) {
      return absl::InvalidArgumentError(
          absl::StrCat("sam: rho must be finite and > 0, got ", recipe.sam_rho));
    }
  }
  const LocalSchedule& schedule = recipe.schedule;
  if (schedule.batch_size == 0) return absl::InvalidArgumentError("TrainLocal: batch_size is 0");
  if (schedule.steps == 0 && schedule.epochs == 0) {
    return absl::InvalidArgumentError("TrainLocal: epochs and steps are both 0");
  }
  const gpu::NetSpec spec = NetSpecFor(config_);
  const size_t p = spec.num_params;
  const int dim = spec.input_dim;
  for (const BatchedTask& t : tasks) {
    if (t.base.size() != p) {
      return absl::InvalidArgumentError(
          absl::StrCat("TrainLocal: base has ", t.base.size(), " floats, the model ", p));
    }
    if (t.data == nullptr || t.data->dim() != dim) {
      return absl::InvalidArgumentError(absl::StrCat("TrainLocal: data dim ",
                                                     t.data == nullptr ? 0 : t.data->dim(),
                                                     " != model input_dim ", dim));
    }
    if (t.indices.empty()) return absl::InvalidArgumentError("TrainLocal: no indices");
    for (uint32_t i : t.indices) {
      if (i >= t.data->size()) {
        return absl::InvalidArgumentError(
            absl::StrCat("TrainLocal: index ", i, " >= dataset size ", t.data->size()));
      }
    }
  }
  int batch_cap = 0;
  for (const BatchedTask& t : tasks) {
    batch_cap = std::max<int>(
        batch_cap, static_cast<int>(std::min<size_t>(schedule.batch_size, t.indices.size())));
  }
  if (absl::Status s = EnsureNet(batch_cap); !s.ok()) return s;
  const int cap = net_->max_rows();

  // Each client's rows on the device: its dataset kept there (the index
  // names dataset rows) or this Train's upload of its rows (the index names
  // positions in its list).
  ++trains_;
  const int c_net = net_->clients();  // rows of unused clients stay 0
  std::vector<const DeviceData*> resident(c_count, nullptr);
  size_t staged_rows = 0;
  for (int c = 0; c < c_count; ++c) {
    const BatchedTask& t = tasks[c];
    if (t.owner != nullptr && t.owner.get() == t.data) resident[c] = DeviceDataset(t.owner);
    if (resident[c] == nullptr) staged_rows += t.indices.size();
  }

  // Plans (batch orders) and the step table: rows[s][c], index[s][c][r].
  std::vector<TaskPlan> plans;
  uint64_t max_steps = 0;
  for (const BatchedTask& t : tasks) {
    plans.push_back(PlanTask(schedule, t.indices.size(), t.seed, cap));
    max_steps = std::max(max_steps, plans.back().steps);
  }
  std::vector<int> rows(max_steps * c_net, 0);
  std::vector<int32_t> index(max_steps * c_net * cap, 0);
  std::vector<int> max_n(max_steps, 0);
  for (int c = 0; c < c_count; ++c) {
    const TaskPlan& plan = plans[c];
    for (uint64_t s = 0; s < plan.steps; ++s) {
      rows[s * c_net + c] = plan.rows[s];
      max_n[s] = std::max(max_n[s], plan.rows[s]);
      int32_t* out = index.data() + (s * c_net + c) * cap;
      const int32_t* local = plan.index.data() + s * cap;
      for (int r = 0; r < plan.rows[s]; ++r) {
        out[r] =
            resident[c] != nullptr ? static_cast<int32_t>(tasks[c].indices[local[r]]) : local[r];
      }
    }
  }

  const size_t pc = p * c_net;
  auto* params = static_cast<float*>(Buffer(kParams, pc * sizeof(float)));
  auto* grad = static_cast<float*>(Buffer(kGrad, pc * sizeof(float)));
  auto* base = static_cast<float*>(Buffer(kBase, pc * sizeof(float)));
  const bool prox = recipe.sgd.prox_mu > 0;
  const bool momentum = recipe.sgd.momentum > 0;
  const bool sam = recipe.sam_rho > 0;
  auto* velocity = momentum ? static_cast<float*>(Buffer(kVelocity, pc * sizeof(float))) : nullptr;
  auto* perturbed = sam ? static_cast<float*>(Buffer(kPerturbed, pc * sizeof(float))) : nullptr;
  auto* loss = static_cast<float*>(Buffer(kLoss, c_net * sizeof(float)));
  auto* loss_sums = static_cast<double*>(Buffer(kLossSums, c_net * sizeof(double)));
  auto* data_x = static_cast<float*>(Buffer(kDataX, staged_rows * dim * sizeof(float)));
  auto* data_y = static_cast<int32_t*>(Buffer(kDataY, staged_rows * sizeof(int32_t)));
  auto* d_client_x = static_cast<const float**>(Buffer(kClientX, c_net * sizeof(float*)));
  auto* d_client_y = static_cast<const int32_t**>(Buffer(kClientY, c_net * sizeof(int32_t*)));
  auto* d_index = static_cast<int32_t*>(Buffer(kIndex, index.size() * sizeof(int32_t)));
  auto* d_rows = static_cast<int*>(Buffer(kRows, rows.size() * sizeof(int)));
  // The other clients' rows, gathered once, in indices order, straight into
  // page-locked staging (features, then labels).
  auto* staging = static_cast<char*>(
      Staging(staged_rows * (static_cast<size_t>(dim) * sizeof(float) + sizeof(int32_t))));
  if (!net_->status().empty() || staging == nullptr) {
    const std::string error =
        net_->status().empty() ? "out of page-locked host memory" : net_->status();
    ReleaseBuffers();
    net_.reset();  // a fresh net next time
    return absl::ResourceExhaustedError(error);
  }
  auto* x = reinterpret_cast<float*>(staging);
  auto* y = reinterpret_cast<int32_t*>(staging + staged_rows * dim * sizeof(float));
  std::vector<const float*> client_x(c_net, nullptr);
  std::vector<const int32_t*> client_y(c_net, nullptr);
  size_t at = 0;
  for (int c = 0; c < c_count; ++c) {
    if (resident[c] != nullptr) {
      client_x[c] = resident[c]->x;
      client_y[c] = resident[c]->y;
      continue;
    }
    client_x[c] = data_x + at * dim;
    client_y[c] = data_y + at;
    tasks[c].data->Gather(tasks[c].indices, x + at * dim, y + at);
    at += tasks[c].indices.size();
  }

  // Bases: a batch of one round's tasks usually shares one model, which is
  // then uploaded once and copied on the device.
  bool shared_base = true;
  for (const BatchedTask& t : tasks)
    shared_base = shared_base && t.base.data() == tasks[0].base.data();
  for (int c = 0; c < c_count; ++c) {
    if (c == 0 || !shared_base) {
      net_->Upload(base + c * p, tasks[c].base.data(), p * sizeof(float));
    } else {
      net_->Copy(base + c * p, base, p * sizeof(float));
    }
  }
  net_->Copy(params, base, c_count * p * sizeof(float));
  if (velocity != nullptr) {
    const std::vector<float> zeros(p, 0.0f);
    for (int c = 0; c < c_count; ++c)
      net_->Upload(velocity + c * p, zeros.data(), p * sizeof(float));
  }
  float* anchor = prox ? base : nullptr;
  const std::vector<double> zeros(c_net, 0.0);
  net_->Upload(loss_sums, zeros.data(), c_net * sizeof(double));
  net_->Upload(data_x, x, staged_rows * dim * sizeof(float));
  net_->Upload(data_y, y, staged_rows * sizeof(int32_t));
  net_->Upload(d_client_x, client_x.data(), c_net * sizeof(float*));
  net_->Upload(d_client_y, client_y.data(), c_net * sizeof(int32_t*));
  net_->Upload(d_index, index.data(), index.size() * sizeof(int32_t));
  net_->Upload(d_rows, rows.data(), rows.size() * sizeof(int));

  gpu::SgdScalars sgd;
  sgd.lr = static_cast<float>(recipe.sgd.lr);
  sgd.momentum = static_cast<float>(recipe.sgd.momentum);
  sgd.weight_decay = static_cast<float>(recipe.sgd.weight_decay);
  sgd.prox_mu = static_cast<float>(recipe.sgd.prox_mu);
  for (uint64_t s = 0; s < max_steps; ++s) {
    net_->SetRows(d_rows + s * c_net, max_n[s], c_count);
    net_->Gather(d_client_x, d_client_y, d_index + s * c_net * cap);
    net_->Forward(params);
    net_->CrossEntropy(loss);
    net_->Backward(params, grad, nullptr);
    net_->AddLoss(loss, loss_sums);
    if (sam) {
      net_->SamPoint(recipe.sam_rho, params, grad, perturbed);
      net_->Forward(perturbed);
      net_->CrossEntropy(loss);
      net_->Backward(perturbed, grad, nullptr);
    }
    net_->SgdStep(sgd, params, grad, anchor, velocity);
  }
  // Deltas on the device (local - base, the host's float subtraction), into
  // the grads' buffer, which the steps no longer need.
  net_->Subtract(params, base, grad, c_count * p);
  std::vector<double> sums(c_net);
  net_->Download(sums.data(), loss_sums, c_net * sizeof(double));
  std::vector<LocalTrainingResult> results(c_count);
  for (int c = 0; c < c_count; ++c) {
    LocalTrainingResult& r = results[c];
    r.delta.resize(p);
    net_->Download(r.delta.data(), grad + c * p, p * sizeof(float));
    r.steps = plans[c].steps;
    r.examples_processed = plans[c].examples;
    r.mean_loss = r.steps > 0 ? sums[c] / static_cast<double>(r.steps) : 0.0;
  }
  if (!net_->status().empty()) {
    const std::string error = net_->status();
    ReleaseBuffers();
    net_.reset();
    return absl::InternalError(error);
  }
  return results;
}

}  // namespace fedsim
