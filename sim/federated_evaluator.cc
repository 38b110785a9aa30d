// Federated evaluation: evaluation tasks out, figures combined in client order.
#include "sim/federated_evaluator.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <memory>
#include <utility>

#include "absl/strings/str_cat.h"

namespace fedsim {

namespace {

constexpr char kFedLoss[] = "fed_loss";
constexpr char kFedAccuracy[] = "fed_accuracy";
constexpr char kFedAccMin[] = "fed_acc_min";
constexpr char kFedAccMax[] = "fed_acc_max";
constexpr char kFedAccStd[] = "fed_acc_std";
constexpr char kFedClients[] = "fed_clients";

// The model being evaluated, as the workers fetch it: a client reference
// no real client has.
ModelRef EvalModelRef(uint64_t evaluation) {
  return ModelRef::OfClient(std::numeric_limits<ClientId>::max(), evaluation);
}

}  // namespace

FederatedEvaluator::FederatedEvaluator(Transport* transport, ModelStore* store,
                                       std::vector<FederatedClient> clients,
                                       EvaluatorInterface* central, FederatedEvalOptions options)
    : transport_(transport), store_(store), central_(central), options_(options) {
  for (const FederatedClient& c : clients) {
    if (c.test_examples > 0) clients_.push_back(c);
  }
  std::sort(clients_.begin(), clients_.end(),
            [](const FederatedClient& a, const FederatedClient& b) { return a.client < b.client; });
}

std::vector<std::string> FederatedEvaluator::ExtraMetricNames() const {
  std::vector<std::string> names =
      central_ != nullptr ? central_->ExtraMetricNames() : std::vector<std::string>();
  for (const char* n : {kFedLoss, kFedAccuracy, kFedAccMin, kFedAccMax, kFedAccStd, kFedClients}) {
    names.push_back(n);
  }
  return names;
}

MetricValues FederatedEvaluator::Federated(std::span<const float> params) {
  const ModelRef ref = EvalModelRef(evaluations_++);
  store_->Put(ref, std::make_shared<const std::vector<float>>(params.begin(), params.end()));
  // Those asked: every client, or on the wall clock the connected ones.
  std::vector<const FederatedClient*> asked;
  const std::optional<std::vector<bool>> connected =
      options_.wall_clock ? transport_->ConnectedClients() : std::nullopt;
  for (const FederatedClient& c : clients_) {
    if (connected.has_value() && (c.client >= connected->size() || !(*connected)[c.client])) {
      continue;
    }
    asked.push_back(&c);
  }
  const absl::Time deadline = options_.wall_clock ? options_.clock->Now() + options_.answer_timeout
                                                  : absl::InfiniteFuture();
  std::vector<TaskId> ids;
  for (const FederatedClient* c : asked) {
    TaskSpec spec;
    spec.id = next_task_++;
    spec.kind = TaskKind::kEvaluate;
    spec.client = c->client;
    spec.base = ref;
    transport_->Submit(spec);
    ids.push_back(spec.id);
  }
  double loss = 0, correct = 0, count = 0;
  std::vector<double> accuracies;
  absl::Status error;
  for (size_t i = 0; i < ids.size(); ++i) {
    absl::StatusOr<std::optional<TaskResult>> answer = transport_->AwaitUntil(ids[i], deadline);
    if (!answer.ok()) {
      if (error.ok()) error = answer.status();
      continue;
    }
    if (!answer->has_value()) {  // wall clock: too late, left out
      transport_->Cancel(ids[i]);
      continue;
    }
    TaskResult* r = &**answer;
    const double n = r->metrics[kEvalCount];
    if (n != static_cast<double>(asked[i]->test_examples)) {
      if (error.ok()) {
        error = absl::FailedPreconditionError(absl::StrCat("client ", asked[i]->client,
                                                           " evaluated ", n,
                                                           " test examples, but the client list "
                                                           "gives it ",
                                                           asked[i]->test_examples));
      }
      continue;
    }
    loss += r->metrics[kEvalLossSum];
    correct += r->metrics[kEvalCorrect];
    count += n;
    accuracies.push_back(r->metrics[kEvalCorrect] / n);
  }
  store_->Release(ref);
  MetricValues v;
  last_error_ = error;
  if (!error.ok() || accuracies.empty()) {
    const double nan = std::numeric_limits<double>::quiet_NaN();
    for (const char* n : {kFedLoss, kFedAccuracy, kFedAccMin, kFedAccMax, kFedAccStd}) v[n] = nan;
    v[kFedClients] = static_cast<double>(accuracies.size());
    return v;
  }
  const double k = static_cast<double>(accuracies.size());
  double mean = 0, var = 0;
  for (double a : accuracies) mean += a;
  mean /= k;
  for (double a : accuracies) var += (a - mean) * (a - mean);
  v[kFedLoss] = loss / count;
  v[kFedAccuracy] = correct / count;
  v[kFedAccMin] = *std::min_element(accuracies.begin(), accuracies.end());
  v[kFedAccMax] = *std::max_element(accuracies.begin(), accuracies.end());
  v[kFedAccStd] = std::sqrt(var / k);
  v[kFedClients] = k;
  return v;
}

MetricValues FederatedEvaluator::Evaluate(std::span<const float> params) {
  MetricValues v = central_ != nullptr ? central_->Evaluate(params) : MetricValues();
  MetricValues fed = Federated(params);
  if (central_ == nullptr) {
    v["test_loss"] = fed[kFedLoss];
    v["test_accuracy"] = fed[kFedAccuracy];
  }
  v.insert(fed.begin(), fed.end());
  return v;
}

double FederatedEvaluator::Accuracy(std::span<const float> params) {
  if (central_ != nullptr) return central_->Accuracy(params);
  return Federated(params)[kFedAccuracy];
}

}  // namespace fedsim
