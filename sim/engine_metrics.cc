// Evaluation rows and commits of the engine (see engine.h).
#include <algorithm>
#include <cmath>
#include <limits>
#include <string>

#include "absl/strings/str_cat.h"
#include "sim/engine_impl.h"
#include "util/status_macros.h"

namespace fedsim {

void Engine::Impl::ComputeColumns() {
  columns_ = BaseMetricColumns();
  for (const std::string& name : evaluator_->ExtraMetricNames()) columns_.push_back(name);
  if (!eval_clients_.empty()) {
    for (const char* name :
         {"client_accuracy_mean", "client_accuracy_min", "client_accuracy_max"}) {
      columns_.push_back(name);
    }
  }
  for (const std::string& name : algorithm_->MetricNames()) columns_.push_back(name);
}

absl::Status Engine::Impl::Evaluate() {
  MetricsRow row;
  row.virtual_time = now_;
  row.version = version_;
  row.wall_s = source_->WallSeconds();
  MetricValues& v = row.values;
  v = evaluator_->Evaluate(global_);
  v["virtual_time"] = now_;
  v["version"] = static_cast<double>(version_);
  v["updates_applied"] = static_cast<double>(applied_);
  v["updates_dropped"] = static_cast<double>(dropped_);
  v["bytes_down"] = static_cast<double>(bytes_down_);
  v["bytes_up"] = static_cast<double>(bytes_up_);
  v["mean_staleness"] = staleness_count_ > 0 ? staleness_sum_ / staleness_count_ : 0.0;
  v["max_staleness"] = static_cast<double>(staleness_max_);
  if (!eval_clients_.empty()) {
    double sum = 0, lo = 1, hi = 0;
    size_t scored = 0;
    for (ClientId c : eval_clients_) {
      // Empty when its worker is gone (an interrupted peer-to-peer run).
      const std::span<const float> model = algorithm_->ClientModel(c);
      if (model.size() != global_.size()) continue;
      const double acc = evaluator_->Accuracy(model);
      sum += acc;
      lo = std::min(lo, acc);
      hi = std::max(hi, acc);
      ++scored;
    }
    const double nan = std::numeric_limits<double>::quiet_NaN();
    v["client_accuracy_mean"] = scored > 0 ? sum / static_cast<double>(scored) : nan;
    v["client_accuracy_min"] = scored > 0 ? lo : nan;
    v["client_accuracy_max"] = scored > 0 ? hi : nan;
  }
  algorithm_->CollectMetrics(*this, &v);
  staleness_sum_ = 0;
  staleness_count_ = 0;
  staleness_max_ = 0;
  last_eval_version_ = version_;
  last_accuracy_ = row.Get("test_accuracy");
  last_loss_ = row.Get("test_loss");
  observer_->OnEvaluation(row);
  if (config_.target_accuracy > 0 && last_accuracy_ >= config_.target_accuracy) {
    Stop("target_accuracy");
  }
  return absl::OkStatus();
}

absl::Status Engine::Impl::ApplyCommit(absl::StatusOr<CommitResult> result, bool final_flush) {
  if (!result.ok()) return RuleError(result.status(), final_flush ? "Finish" : "Commit");
  for (float x : global_) {
    if (!std::isfinite(x)) {
      return absl::InternalError(
          absl::StrCat("the global model became non-finite at version ", version_ + 1,
                       " (diverged): lower local.lr or the rule's server learning rate"));
    }
  }
  // The previous current version stays in the store only while tasks need it.
  const ModelRef old = ModelRef::Global(version_);
  ++version_;
  store_->Put(ModelRef::Global(version_), std::make_shared<const std::vector<float>>(global_));
  if (refs_.find(old) == refs_.end()) store_->Release(old);
  for (const AppliedUpdate& a : result->applied) {
    staleness_sum_ += static_cast<double>(a.staleness);
    staleness_max_ = std::max(staleness_max_, a.staleness);
    ++staleness_count_;
  }
  applied_ += result->applied.size();
  observer_->OnCommit(now_, version_, *result);
  const bool last = !final_flush && config_.max_commits > 0 && version_ >= config_.max_commits;
  // The rule dispatches nothing once stopped: with no task in flight, the
  // workers can go while this commit is evaluated.
  if (last && in_flight_.empty()) ReleaseWorkers();
  if (config_.eval_every_commits > 0 && version_ % config_.eval_every_commits == 0) {
    FEDSIM_RETURN_IF_ERROR(Evaluate());
  }
  if (last) Stop("max_commits");
  return absl::OkStatus();
}

}  // namespace fedsim
