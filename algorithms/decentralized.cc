// Decentralized learning: D-PSGD, DFedAvg, DFedAvgM, DFedSAM, DFedSAM-MGS.
//
// Paper: Y. Shi, L. Shen, K. Wei, Y. Sun, B. Yuan, X. Wang, D. Tao,
// "Improving the Model Consistency of Decentralized Federated Learning",
// ICML 2023, arXiv:2302.04083. Spec: ALGORITHMS.md section 6.
//
// No global model: every client keeps x_i. A round r:
//   participants (the participation process's round r, idle) train from
//   their own x_i with the variant's local step -> y_i = x_i + delta_i;
//   non-participants keep y_i = x_i;
//   z^0 = y; Q times z_i^q = sum_l W'_il z_l^(q-1); x_i = z_i^Q,
// where W' is the round's mixing matrix with the rows of non-participants
// replaced by the identity: a client that did not train keeps its model but
// its neighbours still read it ("answers its neighbours").
//
// Where we differ from the paper / its code, and why:
//  - Gossip comes after local training (the paper's order); some public
//    reimplementations average before training.
//  - The variants are one rule: they differ only in the local step, which the
//    rule sets per task (steps = 1 for D-PSGD; momentum for DFedAvgM and the
//    SAM variants; SAM radius rho for DFedSAM and MGS) and in Q.
//  - The learning rate decays per round (local.lr * lr_decay^r), as in the
//    paper's setup (0.998).
//  - Virtual time: a round lasts until its slowest participant's task has
//    arrived (the device model), then Q gossip steps, each as long as the
//    slowest active link (the sender's model upload plus the receiver's model
//    download, ClientInfo::upload_s / download_s). Bytes are counted per
//    directed link and step.
//  - With uniform rows on a time-varying graph (the DisPFL setting) W is only
//    row-stochastic: the average model may drift; `fedsim validate` says so.
//
// Determinism: gossip sums in a fixed order (algorithms/gossip.h); the
// average model and the consensus distance are summed in double in client
// order.
#include <algorithm>
#include <cmath>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "algorithms/gossip.h"
#include "algorithms/local_client_models.h"
#include "algorithms/mixing.h"
#include "algorithms/rule_util.h"
#include "algorithms/rules.h"
#include "algorithms/topology.h"
#include "util/checks.h"
#include "util/status_macros.h"

namespace fedsim {
namespace {

using Params = std::shared_ptr<const std::vector<float>>;

constexpr char kPath[] = "algorithm.decentralized";

// Rounds without any participant that one Select skips before waiting for
// availability to change.
constexpr int kMaxEmptyRounds = 10000;

bool UsesSam(config::Decentralized::Variant v) {
  return v == config::Decentralized::DFEDSAM || v == config::Decentralized::DFEDSAM_MGS;
}

uint32_t GossipSteps(const config::Decentralized& c) {
  if (c.gossip_steps() > 0) return c.gossip_steps();
  return c.variant() == config::Decentralized::DFEDSAM_MGS ? 4 : 1;
}

// The topology config with a relative edge-list path resolved against the
// scenario folder.
config::Topology ResolvedTopology(const config::Decentralized& c, const std::string& dir) {
  config::Topology t = c.topology();
  if (!t.has_ring() && t.kind_case() == config::Topology::KIND_NOT_SET) t.mutable_ring();
  if (t.has_edge_list()) {
    const std::string& csv = t.edge_list().csv();
    if (!csv.empty() && csv[0] != '/' && !dir.empty() && dir != ".") {
      t.mutable_edge_list()->set_csv(absl::StrCat(dir, "/", csv));
    }
  }
  return t;
}

std::unique_ptr<Topology> BuildTopology(const config::Decentralized& c, uint32_t num_clients,
                                        uint64_t seed, const std::string& dir,
                                        ProblemList* problems) {
  TopologyOptions options;
  options.num_clients = num_clients;
  options.seed = seed;
  options.path = absl::StrCat(kPath, ".topology");
  return NewTopology(ResolvedTopology(c, dir), options, problems);
}

class Decentralized final : public Algorithm {
 public:
  Decentralized(const config::Decentralized& c, std::unique_ptr<Topology> topology,
                const AlgorithmContext& context)
      : config_(c),
        q_(GossipSteps(c)),
        topology_(std::move(topology)),
        num_params_(context.num_params) {}

  std::string_view Name() const override { return "decentralized"; }

  absl::Status Start(const FleetView& fleet, ModelBank& bank) override {
    if (fleet.num_clients() != topology_->num_clients()) {
      return absl::FailedPreconditionError(
          absl::StrCat(kPath, ": the topology has ", topology_->num_clients(),
                       " clients but the run has ", fleet.num_clients()));
    }
    UseModels(fleet, bank);
    const std::span<const float> initial = bank.global();
    // Every client starts from the same model: one shared vector, published
    // for the tasks (and, with workers, for their first fetch).
    auto x0 = std::make_shared<const std::vector<float>>(initial.begin(), initial.end());
    for (ClientId c = 0; c < fleet.num_clients(); ++c) {
      bank.Publish(ModelRef::OfClient(c, fleet.version()), x0);
    }
    version_ = fleet.version();
    return models_->Init(*x0, fleet.version());
  }

  // After LoadState: the client models of the current version go back into
  // the (new, empty) store, where tasks and evaluation find them, or to the
  // workers.
  absl::Status Resume(const FleetView& fleet, ModelBank& bank) override {
    if (local_ == nullptr || topology_->num_clients() != fleet.num_clients()) {
      return absl::FailedPreconditionError(
          absl::StrCat(kPath, ": the checkpoint's client models do not fit the run's ",
                       fleet.num_clients(), " clients"));
    }
    std::vector<std::span<const float>> spans, ys(fleet.num_clients());
    for (ClientId c = 0; c < fleet.num_clients(); ++c) {
      bank.Publish(ModelRef::OfClient(c, fleet.version()), local_->model(c));
      spans.push_back(*local_->model(c));
      if (local_->trained(c) != nullptr) ys[c] = *local_->trained(c);
    }
    ClientModels* remote = bank.remote_client_models();
    if (remote == nullptr) return absl::OkStatus();
    // With workers: the models, and the round's trained ones, go to them.
    FEDSIM_RETURN_IF_ERROR(remote->Restore(spans, ys, fleet.version()));
    local_.reset();
    models_ = remote;
    return absl::OkStatus();
  }

  absl::StatusOr<std::vector<Dispatch>> Select(const FleetView& fleet, Rng& rng) override {
    (void)rng;
    std::vector<Dispatch> out;
    if (round_active_ || fleet.num_busy() > 0 || models_ == nullptr) return out;
    const uint32_t n = static_cast<uint32_t>(fleet.num_clients());
    for (int empty = 0; empty < kMaxEmptyRounds; ++empty, ++round_) {
      active_.assign(n, 0);
      for (ClientId c = 0; c < n; ++c) {
        const ClientInfo& info = fleet.client(c);
        if (!info.busy && info.available && fleet.ParticipatesInRound(c, round_)) {
          active_[c] = 1;
          out.push_back(DispatchFor(c, fleet.version()));
        }
      }
      if (!out.empty()) break;
    }
    if (out.empty()) return out;  // nobody can train: wait for availability
    FEDSIM_RETURN_IF_ERROR(models_->PrepareRound(fleet.version()));
    round_active_ = true;
    outstanding_ = out.size();
    trained_.assign(n, 0);
    tasks_.assign(n, 0);
    gossip_end_.reset();
    gossip_due_ = false;
    return out;
  }

  absl::Status Accept(const FleetView& fleet, ClientUpdate update) override {
    const ClientId c = update.client;
    if (!round_active_ || c >= active_.size() || !active_[c] ||
        update.base != ModelRef::OfClient(c, fleet.version()) || trained_[c] != 0) {
      return absl::FailedPreconditionError(absl::StrCat("decentralized: update of client ", c,
                                                        " from ", update.base.ToString(),
                                                        " is not expected in round ", round_));
    }
    // With worker processes the client's worker keeps y_i and sends no tensor.
    if (!(models_->remote() && update.delta.empty())) {
      FEDSIM_RETURN_IF_ERROR(CheckDelta(update, num_params_));
    }
    FEDSIM_RETURN_IF_ERROR(models_->Trained(c, fleet.version(), std::move(update.delta)));
    trained_[c] = 1;
    tasks_[c] = update.task_id;
    FinishOne(fleet);
    return absl::OkStatus();
  }

  void OnTaskLost(const FleetView& fleet, TaskId task, ClientId client) override {
    (void)task;
    if (!round_active_ || client >= active_.size() || !active_[client]) return;
    active_[client] = 0;  // keeps its model, like a client that did not train
    FinishOne(fleet);
  }

  bool ReadyToCommit(const FleetView& fleet) const override {
    (void)fleet;
    return round_active_ && outstanding_ == 0 && (!gossip_end_.has_value() || gossip_due_);
  }

  std::optional<VirtualTime> NextDeadline() const override {
    if (round_active_ && outstanding_ == 0) return gossip_end_;
    return std::nullopt;
  }

  absl::Status OnTimer(const FleetView& fleet) override {
    if (gossip_end_.has_value() && fleet.now() >= *gossip_end_) gossip_due_ = true;
    return absl::OkStatus();
  }

  absl::StatusOr<CommitResult> Commit(const FleetView& fleet, ModelBank& bank) override;

  std::span<const float> ClientModel(ClientId id) const override {
    if (models_ == nullptr || id >= topology_->num_clients()) return {};
    if (local_ != nullptr) return *local_->model(id);
    // With workers: fetched once per version (the evaluation's sample).
    if (fetched_version_ != version_) fetched_.clear();
    fetched_version_ = version_;
    auto it = fetched_.find(id);
    if (it == fetched_.end()) {
      absl::StatusOr<std::vector<float>> x = models_->Get(id, version_);
      if (!x.ok()) return {};
      it = fetched_.emplace(id, *std::move(x)).first;
    }
    return it->second;
  }

  std::vector<std::string> MetricNames() const override {
    return {"consensus_distance", "gossip_bytes", "round_gossip_bytes"};
  }
  void CollectMetrics(const FleetView& fleet, MetricValues* out) const override {
    (void)fleet;
    (*out)["consensus_distance"] = consensus_;
    (*out)["gossip_bytes"] = static_cast<double>(bytes_total_);
    (*out)["round_gossip_bytes"] = static_cast<double>(bytes_last_);
  }

  absl::Status SaveState(AlgorithmState* out) const override;
  absl::Status LoadState(const AlgorithmState& in) override;

 private:
  Dispatch DispatchFor(ClientId c, Version version) const {
    Dispatch d;
    d.client = c;
    d.base = ModelRef::OfClient(c, version);
    const auto v = config_.variant();
    if (v == config::Decentralized::DPSGD) d.overrides.steps = 1;
    d.overrides.momentum =
        (v == config::Decentralized::DPSGD || v == config::Decentralized::DFEDAVG)
            ? 0.0
            : config_.momentum();
    d.overrides.sam_rho = UsesSam(v) ? config_.rho() : 0.0;
    d.overrides.lr_scale = std::pow(config_.lr_decay(), static_cast<double>(version));
    return d;
  }

  // One participant is done (arrived or lost). When the last is, the gossip
  // phase starts: Q steps, each as long as the slowest active link.
  void FinishOne(const FleetView& fleet) {
    if (--outstanding_ > 0) return;
    const MixingMatrix& w = RoundMatrix();
    double slowest = 0;
    for (uint32_t i = 0; i < w.num_clients(); ++i) {
      if (!active_[i]) continue;
      for (const MatrixEntry& e : w.row(i)) {
        if (e.col == i || e.weight == 0) continue;
        slowest = std::max(slowest, fleet.client(e.col).upload_s + fleet.client(i).download_s);
      }
    }
    const double gossip_s = slowest * q_;
    if (gossip_s > 0) gossip_end_ = fleet.now() + gossip_s;
  }

  // W of the current round (cached for static topologies).
  const MixingMatrix& RoundMatrix() {
    if (!topology_->time_varying() && matrix_.num_clients() > 0) return matrix_;
    if (matrix_round_ != round_ || matrix_.num_clients() == 0) {
      std::shared_ptr<const Graph> graph = topology_->GraphAt(round_);
      absl::StatusOr<MixingMatrix> w = BuildMixing(*topology_, *graph, config_.mixing());
      // Validation built round 0's matrix already; a later round's can only
      // fail on a bug, which Commit reports.
      matrix_ = w.ok() ? *std::move(w) : MixingMatrix();
      matrix_status_ = w.status();
      matrix_round_ = round_;
    }
    return matrix_;
  }

  // The client models live in this process (local_) or on the workers.
  void UseModels(const FleetView& fleet, ModelBank& bank) {
    models_ = bank.remote_client_models();
    if (models_ == nullptr) {
      local_ = std::make_unique<LocalClientModels>(fleet.num_clients());
      models_ = local_.get();
    }
  }

  const config::Decentralized config_;
  const uint32_t q_;
  const std::unique_ptr<Topology> topology_;
  const size_t num_params_;

  std::unique_ptr<LocalClientModels> local_;  // in-process runs
  ClientModels* models_ = nullptr;            // local_ or the workers'
  Version version_ = 0;                       // the models' version
  // Client models fetched from workers for the evaluation of version_.
  mutable std::map<ClientId, std::vector<float>> fetched_;
  mutable Version fetched_version_ = 0;
  uint64_t round_ = 0;  // participation round of the next/current round
  bool round_active_ = false;
  std::vector<uint8_t> active_;   // trains (and mixes) this round
  std::vector<uint8_t> trained_;  // reported participants (their y_i is kept)
  std::vector<TaskId> tasks_;     // their task ids
  size_t outstanding_ = 0;
  std::optional<VirtualTime> gossip_end_;
  bool gossip_due_ = false;

  MixingMatrix matrix_;
  uint64_t matrix_round_ = 0;
  absl::Status matrix_status_;

  double consensus_ = 0;
  uint64_t bytes_total_ = 0, bytes_last_ = 0;
};

absl::StatusOr<CommitResult> Decentralized::Commit(const FleetView& fleet, ModelBank& bank) {
  const uint32_t n = topology_->num_clients();
  const MixingMatrix& w = RoundMatrix();
  if (!matrix_status_.ok()) return matrix_status_;
  absl::StatusOr<MixSummary> summary;
  uint64_t links = 0;
  // A worker lost during the round: mixed again, the trained models that
  // went with it (ClientModels::Mix names them) counted as not trained.
  for (uint32_t attempt = 0; attempt <= n; ++attempt) {
    // W' = W with the rows of non-participants replaced by the identity.
    MixRows rows(n);
    links = 0;
    for (uint32_t i = 0; i < n; ++i) {
      if (!active_[i]) {
        rows[i] = {MixEntry{i, 1.0f}};
        continue;
      }
      for (const MatrixEntry& e : w.row(i)) {
        rows[i].push_back(MixEntry{e.col, static_cast<float>(e.weight)});
        links += (e.col != i && e.weight != 0) ? 1 : 0;
      }
    }
    std::vector<ClientId> lost;
    summary = models_->Mix(fleet.version(), trained_, rows, q_, bank.global(), &lost);
    if (summary.ok() || summary.status().code() != absl::StatusCode::kAborted) break;
    for (ClientId c : lost) {
      if (c < n) trained_[c] = active_[c] = 0;
    }
  }
  if (!summary.ok()) return summary.status();

  CommitResult result;
  for (uint32_t i = 0; i < n; ++i) {
    if (trained_[i]) {
      result.applied.push_back(
          AppliedUpdate{.task_id = tasks_[i], .client = i, .staleness = 0, .weight = 1.0});
    }
    // In-process tasks and evaluation read the models from the store.
    if (local_ != nullptr)
      bank.Publish(ModelRef::OfClient(i, fleet.version() + 1), local_->model(i));
  }
  version_ = fleet.version() + 1;
  consensus_ = summary->consensus_distance;
  const size_t p = num_params_;
  bytes_last_ = links * q_ * p * sizeof(float);
  bytes_total_ += bytes_last_;

  round_active_ = false;
  trained_.assign(n, 0);
  gossip_end_.reset();
  gossip_due_ = false;
  ++round_;
  return result;
}

absl::Status Decentralized::SaveState(AlgorithmState* out) const {
  *out = AlgorithmState();
  PutScalar(out, "decentralized.round", static_cast<double>(round_));
  PutScalar(out, "decentralized.version", static_cast<double>(version_));
  PutScalar(out, "decentralized.round_active", round_active_ ? 1 : 0);
  PutScalar(out, "decentralized.outstanding", static_cast<double>(outstanding_));
  PutScalar(out, "decentralized.gossip_end", gossip_end_.value_or(-1));
  PutScalar(out, "decentralized.gossip_due", gossip_due_ ? 1 : 0);
  PutScalar(out, "decentralized.consensus", consensus_);
  PutScalar(out, "decentralized.bytes_total", static_cast<double>(bytes_total_));
  PutScalar(out, "decentralized.bytes_last", static_cast<double>(bytes_last_));
  std::vector<double> active(active_.begin(), active_.end());
  PutScalars(out, "decentralized.active", std::move(active));
  std::vector<double> tasks(tasks_.begin(), tasks_.end());
  PutScalars(out, "decentralized.tasks", std::move(tasks));
  for (ClientId i = 0; models_ != nullptr && i < topology_->num_clients(); ++i) {
    // With workers this fetches every client's model (a checkpoint is the
    // one place where the server collects them all).
    absl::StatusOr<std::vector<float>> x = models_->Get(i, version_);
    if (!x.ok()) return x.status();
    PutTensor(out, absl::StrCat("decentralized.x.", i), *x);
  }
  std::vector<double> trained;
  for (ClientId i = 0; models_ != nullptr && i < trained_.size(); ++i) {
    if (!trained_[i]) continue;
    absl::StatusOr<std::vector<float>> y = models_->GetTrained(i, version_);
    if (!y.ok()) return y.status();
    trained.push_back(static_cast<double>(i));
    PutTensor(out, absl::StrCat("decentralized.y.", i), *y);
  }
  PutScalars(out, "decentralized.trained", std::move(trained));
  return absl::OkStatus();
}

absl::Status Decentralized::LoadState(const AlgorithmState& in) {
  const uint32_t n = topology_->num_clients();
  absl::StatusOr<uint64_t> round = GetCount(in, "decentralized.round");
  absl::StatusOr<uint64_t> version = GetCount(in, "decentralized.version");
  absl::StatusOr<uint64_t> active_flag = GetCount(in, "decentralized.round_active");
  absl::StatusOr<uint64_t> outstanding = GetCount(in, "decentralized.outstanding");
  absl::StatusOr<double> gossip_end = GetScalar(in, "decentralized.gossip_end");
  absl::StatusOr<uint64_t> due = GetCount(in, "decentralized.gossip_due");
  absl::StatusOr<double> consensus = GetScalar(in, "decentralized.consensus");
  absl::StatusOr<uint64_t> bytes_total = GetCount(in, "decentralized.bytes_total");
  absl::StatusOr<uint64_t> bytes_last = GetCount(in, "decentralized.bytes_last");
  absl::StatusOr<std::vector<double>> active = GetScalars(in, "decentralized.active");
  absl::StatusOr<std::vector<double>> tasks = GetScalars(in, "decentralized.tasks");
  absl::StatusOr<std::vector<double>> trained = GetScalars(in, "decentralized.trained");
  for (const absl::Status& s :
       {round.status(), version.status(), active_flag.status(), outstanding.status(),
        gossip_end.status(), due.status(), consensus.status(), bytes_total.status(),
        bytes_last.status(), active.status(), tasks.status(), trained.status()}) {
    if (!s.ok()) return s;
  }
  if (*active_flag > 1 || *due > 1 || !std::isfinite(*gossip_end) || !std::isfinite(*consensus) ||
      (!active->empty() && active->size() != n) || tasks->size() != active->size() ||
      *outstanding > n) {
    return absl::InvalidArgumentError("decentralized: inconsistent round state in checkpoint");
  }
  std::vector<Params> models(n);
  for (uint32_t i = 0; i < n; ++i) {
    absl::StatusOr<std::vector<float>> x =
        GetTensor(in, absl::StrCat("decentralized.x.", i), num_params_);
    if (!x.ok()) return x.status();
    models[i] = std::make_shared<const std::vector<float>>(*std::move(x));
  }
  std::vector<Params> ys(n);
  for (double c : *trained) {
    if (!(c >= 0 && c < n) || c != std::floor(c)) {
      return absl::InvalidArgumentError("decentralized: bad client id in checkpoint");
    }
    absl::StatusOr<std::vector<float>> y =
        GetTensor(in, absl::StrCat("decentralized.y.", static_cast<uint32_t>(c)), num_params_);
    if (!y.ok()) return y.status();
    ys[static_cast<uint32_t>(c)] = std::make_shared<const std::vector<float>>(*std::move(y));
  }
  auto local = std::make_unique<LocalClientModels>(n);
  std::vector<std::span<const float>> spans(n), trained_spans(n);
  trained_.assign(n, 0);
  for (uint32_t i = 0; i < n; ++i) {
    spans[i] = *models[i];
    if (ys[i] == nullptr) continue;
    trained_spans[i] = *ys[i];
    trained_[i] = 1;
  }
  FEDSIM_RETURN_IF_ERROR(local->Restore(spans, trained_spans, *version));
  local_ = std::move(local);
  models_ = local_.get();
  version_ = *version;
  round_ = *round;
  round_active_ = *active_flag == 1;
  outstanding_ = *outstanding;
  gossip_end_ = *gossip_end >= 0 ? std::optional<VirtualTime>(*gossip_end) : std::nullopt;
  gossip_due_ = *due == 1;
  consensus_ = *consensus;
  bytes_total_ = *bytes_total;
  bytes_last_ = *bytes_last;
  active_.clear();
  for (double a : *active) {
    if (a != 0 && a != 1) return absl::InvalidArgumentError("decentralized: bad active flag");
    active_.push_back(static_cast<uint8_t>(a));
  }
  tasks_.clear();
  for (double t : *tasks) tasks_.push_back(static_cast<TaskId>(t));
  matrix_ = MixingMatrix();
  return absl::OkStatus();
}

}  // namespace

void FillDecentralizedDefaults(config::Algorithm* config) {
  config::Decentralized* c = config->mutable_decentralized();
  if (c->topology().kind_case() == config::Topology::KIND_NOT_SET)
    c->mutable_topology()->mutable_ring();
}

void ValidateDecentralized(const config::Algorithm& config, const RuleCheckContext& context,
                           ProblemList* problems) {
  const config::Decentralized& c = config.decentralized();
  const std::string path = kPath;
  if (c.variant() == config::Decentralized::VARIANT_UNSPECIFIED) {
    problems->Add(path + ".variant",
                  "is unspecified; use DPSGD, DFEDAVG, DFEDAVGM, DFEDSAM or DFEDSAM_MGS");
  }
  if (UsesSam(c.variant())) {
    CheckPositive(c.rho(), path + ".rho", "it is SAM's radius, e.g. 0.05", problems);
  }
  if (!(c.momentum() >= 0 && c.momentum() < 1)) {
    problems->Add(path + ".momentum",
                  absl::StrCat(NumberText(c.momentum()), " is outside [0, 1); e.g. 0.9"));
  }
  if (!(c.lr_decay() > 0 && c.lr_decay() <= 1)) {
    problems->Add(path + ".lr_decay",
                  absl::StrCat(NumberText(c.lr_decay()),
                               " is outside (0, 1]; 1 keeps the learning rate, e.g. 0.998"));
  }
  if (c.gossip_steps() > 1000) {
    problems->Add(path + ".gossip_steps", absl::StrCat(c.gossip_steps(),
                                                       " gossip steps per round is more than 1000; "
                                                       "the paper's MGS uses 4"));
  }
  if (context.num_clients == 0) return;  // the graph needs the fleet size
  std::unique_ptr<Topology> topology =
      BuildTopology(c, context.num_clients, context.seed, context.scenario_dir, problems);
  if (topology == nullptr) return;
  std::shared_ptr<const Graph> graph = topology->GraphAt(0);
  absl::StatusOr<MixingMatrix> w = BuildMixing(*topology, *graph, c.mixing());
  if (!w.ok()) problems->Add(path + ".topology", std::string(w.status().message()));
}

uint64_t DecentralizedStateBytes(const config::Algorithm& config, uint64_t num_clients,
                                 uint64_t num_params) {
  (void)config;
  // x_i and y_i for every client, and the two gossip buffers: 4 N models.
  return ModelBytes(4 * num_clients, num_params);
}

std::vector<std::string> DecentralizedNotes(const config::Algorithm& config,
                                            const RuleCheckContext& context) {
  const config::Decentralized& c = config.decentralized();
  ProblemList problems;
  std::unique_ptr<Topology> topology =
      BuildTopology(c, context.num_clients, context.seed, context.scenario_dir, &problems);
  if (topology == nullptr) return {};
  absl::StatusOr<MixingSummary> summary = SummarizeMixing(*topology, c.mixing());
  std::vector<std::string> lines;
  lines.push_back(absl::StrCat("decentralized ", config::Decentralized::Variant_Name(c.variant()),
                               ", ", GossipSteps(c),
                               " gossip step(s) per round, gossip after "
                               "local training"));
  lines.push_back(summary.ok() ? absl::StrCat("mixing: ", summary->text)
                               : absl::StrCat("mixing: ", summary.status().message()));
  return lines;
}

absl::StatusOr<std::unique_ptr<Algorithm>> NewDecentralized(const config::Algorithm& config,
                                                            const AlgorithmContext& context) {
  if (config.rule_case() != config::Algorithm::kDecentralized) {
    return absl::InvalidArgumentError("NewDecentralized: algorithm.decentralized is not set");
  }
  FEDSIM_RETURN_IF_ERROR(ValidateInFactory(&ValidateDecentralized, config, context));
  if (context.num_clients == 0) {
    return absl::InvalidArgumentError(
        "algorithm.decentralized: the number of clients is needed to build the topology");
  }
  ProblemList problems;
  std::unique_ptr<Topology> topology =
      BuildTopology(config.decentralized(), static_cast<uint32_t>(context.num_clients),
                    context.seed, context.scenario_dir, &problems);
  if (topology == nullptr) return problems.ToStatus();
  return std::unique_ptr<Algorithm>(
      new Decentralized(config.decentralized(), std::move(topology), context));
}

}  // namespace fedsim
