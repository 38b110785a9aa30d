// Synthetic(alpha, beta): the FedProx generator (generate_synthetic.py; Li et
// al., "Federated Optimization in Heterogeneous Networks", arXiv 1812.06127),
// ALGORITHMS.md section 10.
//
// Differences from the Python script, all deliberate:
// - Randomness is counter-based and keyed by client id (streams
//   "synthetic/size", "synthetic/model", "synthetic/x"), so client k's data is
//   the same whatever the number of clients. The script draws from one global
//   numpy stream, so its client k depends on N.
// - The IID variant uses x ~ N(0, Sigma) as the spec says; the script's
//   synthetic_iid got the same by running with alpha = beta = 0.
// - The 90/10 split takes the first floor(0.9 n_k) rows; rows are i.i.d.
//   within a client, so this equals the script's shuffle-then-cut in law.
#include "data/synthetic.h"

#include <algorithm>
#include <cmath>
#include <string>
#include <utility>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "util/rng.h"

namespace fedsim {
namespace {

constexpr uint64_t kIidModelId = ~uint64_t{0};

void DrawModel(Rng& rng, double u, int d, int c, SyntheticClientModel* m) {
  m->w.resize(static_cast<size_t>(d) * c);
  m->b.resize(c);
  for (double& w : m->w) w = rng.Normal(u, 1.0);
  for (double& b : m->b) b = rng.Normal(u, 1.0);
}

absl::Status ValidateOptions(const SyntheticOptions& o, int num_clients) {
  if (num_clients <= 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("synthetic: num_clients must be positive, got ", num_clients));
  }
  if (o.num_features <= 0 || o.num_classes < 2) {
    return absl::InvalidArgumentError(
        absl::StrCat("synthetic: need num_features > 0 and num_classes >= 2, got ", o.num_features,
                     " and ", o.num_classes));
  }
  if (!(o.alpha >= 0.0) || !(o.beta >= 0.0) || !std::isfinite(o.alpha) || !std::isfinite(o.beta)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "synthetic: alpha and beta are standard deviations and must be finite and >= 0, got ",
        o.alpha, " and ", o.beta));
  }
  if (o.examples_per_client == 1) {
    // One row cannot be split 90/10 into a non-empty train part.
    return absl::InvalidArgumentError(
        "synthetic: examples_per_client must be 0 (lognormal sizes) or >= 2");
  }
  return absl::OkStatus();
}

}  // namespace

SyntheticClientModel SyntheticModelForClient(const SyntheticOptions& o, int client, uint64_t seed) {
  const int d = o.num_features;
  const int c = o.num_classes;
  SyntheticClientModel m;
  const uint64_t k = static_cast<uint64_t>(client);
  if (o.examples_per_client > 0) {
    m.num_examples = o.examples_per_client;
  } else {
    Rng size_rng(seed, "synthetic/size", k);
    // numpy's astype(int) truncates toward zero; the value is positive.
    const double n = size_rng.LogNormal(4.0, 2.0);
    // Clamp only so the cast is defined; GenerateSynthetic rejects totals
    // anywhere near this.
    m.num_examples = static_cast<size_t>(std::min(n, 1e15)) + 50;
  }
  m.mean.assign(d, 0.0);
  if (o.iid) {
    Rng model_rng(seed, "synthetic/model", kIidModelId);
    DrawModel(model_rng, 0.0, d, c, &m);
  } else {
    Rng model_rng(seed, "synthetic/model", k);
    const double u = model_rng.Normal(0.0, o.alpha);
    const double big_b = model_rng.Normal(0.0, o.beta);
    for (double& v : m.mean) v = model_rng.Normal(big_b, 1.0);
    DrawModel(model_rng, u, d, c, &m);
  }
  return m;
}

int SyntheticLabel(const SyntheticClientModel& m, const float* x) {
  const size_t d = m.mean.size();
  const size_t c = m.b.size();
  int best = 0;
  double best_logit = 0.0;
  for (size_t j = 0; j < c; ++j) {
    double logit = m.b[j];
    for (size_t i = 0; i < d; ++i) logit += static_cast<double>(x[i]) * m.w[i * c + j];
    if (j == 0 || logit > best_logit) {
      best = static_cast<int>(j);
      best_logit = logit;
    }
  }
  return best;
}

absl::StatusOr<FederatedData> GenerateSynthetic(const SyntheticOptions& options, int num_clients,
                                                uint64_t seed) {
  if (absl::Status s = ValidateOptions(options, num_clients); !s.ok()) return s;
  const int d = options.num_features;

  std::vector<SyntheticClientModel> models;
  models.reserve(num_clients);
  size_t total = 0;
  for (int k = 0; k < num_clients; ++k) {
    models.push_back(SyntheticModelForClient(options, k, seed));
    const size_t n = models.back().num_examples;
    if (n > kMaxSyntheticRows || total + n > kMaxSyntheticRows) {
      return absl::ResourceExhaustedError(absl::StrCat(
          "synthetic: ", num_clients, " clients need more than ", kMaxSyntheticRows,
          " rows (client ", k, " alone draws n_k = ", n,
          "; n_k = int(lognormal(4, 2)) + 50 is heavy-tailed); set examples_per_client or "
          "use fewer clients"));
    }
    total += n;
  }

  // Sigma is diagonal, so x_j = v_j + sqrt(Sigma_jj) z_j.
  std::vector<double> sd(d);
  for (int j = 0; j < d; ++j) sd[j] = std::sqrt(std::pow(static_cast<double>(j + 1), -1.2));

  size_t train_total = 0;
  for (const auto& m : models) train_total += SyntheticTrainCount(m.num_examples);
  std::vector<float> train_x, test_x;
  std::vector<int32_t> train_y, test_y;
  train_x.reserve(train_total * d);
  train_y.reserve(train_total);
  test_x.reserve((total - train_total) * d);
  test_y.reserve(total - train_total);

  FederatedData out;
  out.client_train.resize(num_clients);
  out.client_test.resize(num_clients);
  std::vector<float> row(d);
  for (int k = 0; k < num_clients; ++k) {
    const SyntheticClientModel& m = models[k];
    Rng x_rng(seed, "synthetic/x", static_cast<uint64_t>(k));
    const size_t n_train = SyntheticTrainCount(m.num_examples);
    for (size_t r = 0; r < m.num_examples; ++r) {
      for (int j = 0; j < d; ++j) row[j] = static_cast<float>(x_rng.Normal(m.mean[j], sd[j]));
      // Labels come from the stored float features, so anyone holding the
      // model (SyntheticModelForClient) recomputes exactly the same label.
      const int32_t y = SyntheticLabel(m, row.data());
      if (r < n_train) {
        out.client_train[k].push_back(static_cast<uint32_t>(train_y.size()));
        train_x.insert(train_x.end(), row.begin(), row.end());
        train_y.push_back(y);
      } else {
        out.client_test[k].push_back(static_cast<uint32_t>(test_y.size()));
        test_x.insert(test_x.end(), row.begin(), row.end());
        test_y.push_back(y);
      }
    }
  }
  const ExampleShape shape{d, 1, 1};  // vectors are dim x 1 x 1
  out.train = Dataset::FromF32(shape, options.num_classes, std::move(train_x), std::move(train_y));
  out.test = Dataset::FromF32(shape, options.num_classes, std::move(test_x), std::move(test_y));
  return out;
}

}  // namespace fedsim
