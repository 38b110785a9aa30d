#include "ml/gpu/gpu_model.h"

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <utility>
#include <vector>

#include "absl/status/status.h"

namespace fedsim {
namespace {

// Rows per pass of Evaluate and Logits; a training batch larger than this
// grows the net to its size.
constexpr int kChunkRows = 256;

class GpuBackedModel final : public Model {
 public:
  GpuBackedModel(ModelConfig config, DeviceSpec device, std::unique_ptr<Model> cpu,
                 std::unique_ptr<gpu::GpuNet> net)
      : config_(std::move(config)), device_(device), cpu_(std::move(cpu)), net_(std::move(net)) {
    Attach();
  }

  const ModelConfig& config() const override { return config_; }
  size_t NumParams() const override { return cpu_->NumParams(); }

  // The CPU model's initialization: the same parameters on every backend.
  void Init(uint64_t seed, std::span<float> params) const override { cpu_->Init(seed, params); }

  float ForwardBackward(std::span<const float> params, const BatchView& batch,
                        std::span<float> grad, std::span<float> dinput) override {
    Prepare(params, batch, /*labels=*/true);
    net_->Forward(params_);
    net_->CrossEntropy(loss_);
    return Finish(grad, dinput);
  }

  float ForwardBackwardLoss(std::span<const float> params, const BatchView& batch, LogitLoss& loss,
                            std::span<float> grad, std::span<float> dinput) override {
    Prepare(params, batch, /*labels=*/false);
    net_->Forward(params_);
    const size_t count = static_cast<size_t>(batch.n) * config_.num_classes;
    host_logits_.resize(count);
    host_dlogits_.resize(count);
    net_->Download(host_logits_.data(), net_->logits(), count * sizeof(float));
    Check();
    const float value =
        static_cast<float>(loss.Compute(host_logits_, batch, config_.num_classes, host_dlogits_));
    net_->Upload(net_->dlogits(), host_dlogits_.data(), count * sizeof(float));
    Finish(grad, dinput);
    return value;
  }

  EvalResult Evaluate(std::span<const float> params, const BatchView& batch) override {
    EvalResult r;
    const double zero_sum = 0.0;
    const int64_t zero_count = 0;
    net_->Upload(eval_loss_, &zero_sum, sizeof zero_sum);
    net_->Upload(eval_correct_, &zero_count, sizeof zero_count);
    for (int s0 = 0; s0 < batch.n; s0 += net_->max_rows()) {
      const int n = std::min(net_->max_rows(), batch.n - s0);
      Prepare(params, Slice(batch, s0, n), /*labels=*/true);
      net_->Forward(params_);
      net_->AccumulateEval(eval_loss_, eval_correct_);
      r.count += n;
    }
    net_->Download(&r.loss_sum, eval_loss_, sizeof r.loss_sum);
    net_->Download(&r.correct, eval_correct_, sizeof r.correct);
    Check();
    return r;
  }

  void Logits(std::span<const float> params, const BatchView& batch,
              std::span<float> out) override {
    const int k = config_.num_classes;
    for (int s0 = 0; s0 < batch.n; s0 += net_->max_rows()) {
      const int n = std::min(net_->max_rows(), batch.n - s0);
      Prepare(params, Slice(batch, s0, n), /*labels=*/false);
      net_->Forward(params_);
      net_->Download(out.data() + static_cast<size_t>(s0) * k, net_->logits(),
                     sizeof(float) * static_cast<size_t>(n) * k);
    }
    Check();
  }

 private:
  BatchView Slice(const BatchView& b, int s0, int n) const {
    return BatchView{b.x + static_cast<size_t>(s0) * config_.input_dim(),
                     b.y != nullptr ? b.y + s0 : nullptr, n};
  }

  // The net's buffers of its own (params, grads, loss and sums).
  void Attach() {
    const size_t p = cpu_->NumParams();
    params_ = net_->AllocArray<float>(p);
    grad_ = net_->AllocArray<float>(p);
    loss_ = net_->AllocArray<float>(1);
    rows_ = net_->AllocArray<int>(1);
    eval_loss_ = net_->AllocArray<double>(1);
    eval_correct_ = net_->AllocArray<int64_t>(1);
    dinput_ = net_->AllocArray<float>(static_cast<size_t>(net_->max_rows()) * config_.input_dim());
    uploaded_.clear();
    Check();
  }

  // Grows the net to n rows (a rare, larger batch); keeps nothing else.
  void Reserve(int n) {
    if (n <= net_->max_rows()) return;
    absl::StatusOr<std::unique_ptr<gpu::GpuNet>> net = NewGpuNet(config_, device_, 1, n);
    if (!net.ok()) Die(std::string(net.status().message()));
    net_ = std::move(*net);
    Attach();
  }

  // Uploads params (when they changed), the batch's inputs and labels, and
  // its row count.
  void Prepare(std::span<const float> params, const BatchView& batch, bool labels) {
    Reserve(batch.n);
    if (uploaded_.size() != params.size() ||
        std::memcmp(uploaded_.data(), params.data(), params.size_bytes()) != 0) {
      net_->Upload(params_, params.data(), params.size_bytes());
      uploaded_.assign(params.begin(), params.end());
    }
    net_->Upload(net_->input(), batch.x,
                 sizeof(float) * static_cast<size_t>(batch.n) * config_.input_dim());
    if (labels && batch.y != nullptr) {
      net_->Upload(net_->labels(), batch.y, sizeof(int32_t) * static_cast<size_t>(batch.n));
    }
    net_->Upload(rows_, &batch.n, sizeof(int));
    net_->SetRows(rows_, batch.n);
    rows_now_ = batch.n;
  }

  // Backward from dlogits into the requested outputs; returns the loss of
  // CrossEntropy (meaningless after a LogitLoss).
  float Finish(std::span<float> grad, std::span<float> dinput) {
    net_->Backward(params_, grad.empty() ? nullptr : grad_, dinput.empty() ? nullptr : dinput_);
    float loss = 0.0f;
    net_->Download(&loss, loss_, sizeof loss);
    if (!grad.empty()) net_->Download(grad.data(), grad_, grad.size_bytes());
    if (!dinput.empty()) {
      net_->Download(dinput.data(), dinput_,
                     sizeof(float) * static_cast<size_t>(rows_now_) * config_.input_dim());
    }
    Check();
    return loss;
  }

  void Check() {
    if (const std::string s = net_->status(); !s.empty()) Die(s);
  }

  [[noreturn]] static void Die(const std::string& message) {
    std::fprintf(stderr, "fedsim: GPU backend failed: %s\n", message.c_str());
    std::abort();
  }

  ModelConfig config_;
  DeviceSpec device_;
  std::unique_ptr<Model> cpu_;  // for Init and the parameter count
  std::unique_ptr<gpu::GpuNet> net_;
  float* params_ = nullptr;
  float* grad_ = nullptr;
  float* loss_ = nullptr;
  int* rows_ = nullptr;
  double* eval_loss_ = nullptr;
  int64_t* eval_correct_ = nullptr;
  float* dinput_ = nullptr;
  int rows_now_ = 0;
  std::vector<float> uploaded_;  // what params_ holds
  std::vector<float> host_logits_;
  std::vector<float> host_dlogits_;
};

}  // namespace

absl::StatusOr<std::unique_ptr<Model>> NewGpuBackedModel(const ModelConfig& config,
                                                         const DeviceSpec& device) {
  if (!device.is_gpu_backend()) {
    return absl::InvalidArgumentError("NewGpuBackedModel: not a GPU backend device");
  }
  absl::StatusOr<std::unique_ptr<Model>> cpu = NewModel(config);
  if (!cpu.ok()) return cpu.status();
  absl::StatusOr<std::unique_ptr<gpu::GpuNet>> net = NewGpuNet(config, device, 1, kChunkRows);
  if (!net.ok()) return net.status();
  return std::unique_ptr<Model>(
      new GpuBackedModel(config, device, std::move(*cpu), std::move(*net)));
}

}  // namespace fedsim
