// Federated evaluation for runs whose clients bring their own data
// (scenario deployment.clients_file): every listed client with a test split
// scores the model on it in its own worker (an evaluation task,
// core/task.h), and the server combines the figures it reports.
//
// Figures, in client order so that they do not depend on which worker
// answers first: fed_loss and fed_accuracy, the example-weighted means over
// the clients (summed loss / summed count, summed correct / summed count);
// fed_acc_min, fed_acc_max and fed_acc_std (population standard deviation),
// the spread of the clients' own accuracies; fed_clients, how many answered.
// With a central test set (`central`), test_loss and test_accuracy are its
// figures and the fed_ figures come beside them; without one, test_loss and
// test_accuracy are fed_loss and fed_accuracy. When `fedsim split` wrote the
// clients' test splits, they partition the central test set, so
// fed_accuracy equals the central test accuracy of the same model.
//
// Evaluate blocks until every client has answered (a client whose worker is
// away is waited for, as its training tasks are). An answer whose count is
// not the client's listed test examples, or a transport error, makes every
// fed_ figure NaN for that evaluation and is kept in last_error().
//
// On the wall clock (a deployment), only the clients connected at the
// evaluation are asked (Transport::ConnectedClients), and the evaluation
// waits at most `answer_timeout` for their answers: a client that has not
// answered by then is left out (its task cancelled), and fed_clients says
// how many were counted. On the virtual clock every client is asked and
// waited for, so the figures are deterministic.
//
// Not thread-safe (one caller: the engine).
#ifndef FEDSIM_SIM_FEDERATED_EVALUATOR_H_
#define FEDSIM_SIM_FEDERATED_EVALUATOR_H_

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/time/time.h"
#include "core/clock.h"
#include "core/model_store.h"
#include "core/transport.h"
#include "sim/engine.h"

namespace fedsim {

struct FederatedClient {
  ClientId client = 0;
  uint64_t test_examples = 0;  // as the client list says
};

struct FederatedEvalOptions {
  bool wall_clock = false;
  // Wall clock only. Default: 60 s (scenario deployment.eval_timeout_s).
  absl::Duration answer_timeout = absl::Seconds(60);
  // Wall clock only: times answer_timeout. Must outlive the evaluator.
  Clock* clock = SystemClock();
};

// The ids of evaluation tasks start here, far above any training task's.
inline constexpr TaskId kFirstEvalTaskId = TaskId{1} << 62;

class FederatedEvaluator : public EvaluatorInterface {
 public:
  // `transport` and `store` (where the evaluated model is put for the
  // workers to fetch) must outlive the evaluator; `central` may be null.
  // Clients without test examples are skipped.
  FederatedEvaluator(Transport* transport, ModelStore* store, std::vector<FederatedClient> clients,
                     EvaluatorInterface* central, FederatedEvalOptions options = {});

  // The central evaluator's extra figures, then fed_loss, fed_accuracy,
  // fed_acc_min, fed_acc_max, fed_acc_std, fed_clients.
  std::vector<std::string> ExtraMetricNames() const override;
  MetricValues Evaluate(std::span<const float> params) override;
  // The central test accuracy, or the federated one without a central set.
  double Accuracy(std::span<const float> params) override;

  const absl::Status& last_error() const { return last_error_; }

 private:
  MetricValues Federated(std::span<const float> params);

  Transport* transport_;
  ModelStore* store_;
  std::vector<FederatedClient> clients_;
  EvaluatorInterface* central_;
  FederatedEvalOptions options_;
  uint64_t evaluations_ = 0;
  TaskId next_task_ = kFirstEvalTaskId;
  absl::Status last_error_;
};

}  // namespace fedsim

#endif  // FEDSIM_SIM_FEDERATED_EVALUATOR_H_
