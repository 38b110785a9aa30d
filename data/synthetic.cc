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
#include <numeric>
#include <string>
#include <tuple>
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

absl::Status CheckClientSize(size_t n, int client) {
  if (n <= kMaxSyntheticRows) return absl::OkStatus();
  return absl::ResourceExhaustedError(absl::StrCat(
      "synthetic: client ", client, " draws n_k = ", n, " rows, more than ", kMaxSyntheticRows,
      " (n_k = int(lognormal(4, 2)) + 50 is heavy-tailed); set examples_per_client"));
}

// Generated rows: features row-major, labels.
struct Rows {
  std::vector<float> x;
  std::vector<int32_t> y;
  void Reserve(size_t rows, int d) {
    x.reserve(rows * d);
    y.reserve(rows);
  }
};

// Appends rows [begin, end) of client `client` (model m) to *out. Rows are
// drawn in order from the client's one stream "synthetic/x"; the rows before
// `begin` are skipped by drawing their uniforms without computing them
// (Rng::Normal takes exactly two words a draw).
void AppendRows(const SyntheticClientModel& m, int client, uint64_t seed, size_t begin,
                size_t end, Rows* out) {
  const size_t d = m.mean.size();
  // Sigma is diagonal, so x_j = v_j + sqrt(Sigma_jj) z_j.
  std::vector<double> sd(d);
  for (size_t j = 0; j < d; ++j) sd[j] = std::sqrt(std::pow(static_cast<double>(j + 1), -1.2));
  Rng x_rng(seed, "synthetic/x", static_cast<uint64_t>(client));
  for (size_t skip = 0; skip < begin * d * 2; ++skip) x_rng.NextU64();
  std::vector<float> row(d);
  for (size_t r = begin; r < end; ++r) {
    for (size_t j = 0; j < d; ++j) row[j] = static_cast<float>(x_rng.Normal(m.mean[j], sd[j]));
    // Labels come from the stored float features, so anyone holding the
    // model (SyntheticModelForClient) recomputes exactly the same label.
    out->y.push_back(SyntheticLabel(m, row.data()));
    out->x.insert(out->x.end(), row.begin(), row.end());
  }
}

Dataset ToDataset(const SyntheticOptions& o, Rows rows) {
  const ExampleShape shape{o.num_features, 1, 1};  // vectors are dim x 1 x 1
  return Dataset::FromF32(shape, o.num_classes, std::move(rows.x), std::move(rows.y));
}

}  // namespace

size_t SyntheticClientSize(const SyntheticOptions& o, int client, uint64_t seed) {
  if (o.examples_per_client > 0) return o.examples_per_client;
  Rng size_rng(seed, "synthetic/size", static_cast<uint64_t>(client));
  // numpy's astype(int) truncates toward zero; the value is positive.
  const double n = size_rng.LogNormal(4.0, 2.0);
  // Clamp only so the cast is defined; the generators reject sizes anywhere
  // near this.
  return static_cast<size_t>(std::min(n, 1e15)) + 50;
}

double SyntheticMeanClientSize(const SyntheticOptions& o) {
  if (o.examples_per_client > 0) return static_cast<double>(o.examples_per_client);
  // E[lognormal(4, 2)] = e^(4 + 2^2 / 2); truncation loses 1/2 on average.
  return std::exp(6.0) - 0.5 + 50.0;
}

SyntheticClientModel SyntheticModelForClient(const SyntheticOptions& o, int client, uint64_t seed) {
  const int d = o.num_features;
  const int c = o.num_classes;
  SyntheticClientModel m;
  const uint64_t k = static_cast<uint64_t>(client);
  m.num_examples = SyntheticClientSize(o, client, seed);
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

absl::StatusOr<Dataset> GenerateSyntheticClient(const SyntheticOptions& options, int client,
                                                uint64_t seed, SyntheticSplit split) {
  if (absl::Status s = ValidateOptions(options, 1); !s.ok()) return s;
  if (client < 0) {
    return absl::InvalidArgumentError(absl::StrCat("synthetic: client ", client, " is negative"));
  }
  const SyntheticClientModel m = SyntheticModelForClient(options, client, seed);
  if (absl::Status s = CheckClientSize(m.num_examples, client); !s.ok()) return s;
  const size_t n_train = SyntheticTrainCount(m.num_examples);
  Rows rows;
  if (split == SyntheticSplit::kTrain) {
    AppendRows(m, client, seed, 0, n_train, &rows);
  } else {
    AppendRows(m, client, seed, n_train, m.num_examples, &rows);
  }
  return ToDataset(options, std::move(rows));
}

absl::StatusOr<Dataset> GenerateSyntheticTestSet(const SyntheticOptions& options, int num_clients,
                                                 uint64_t seed, size_t max_rows) {
  if (absl::Status s = ValidateOptions(options, num_clients); !s.ok()) return s;
  const size_t cap = max_rows == 0 ? kMaxSyntheticRows + 1 : max_rows;
  size_t rows_kept = 0;
  int clients_needed = 0;
  for (; clients_needed < num_clients && rows_kept < cap; ++clients_needed) {
    const size_t n = SyntheticClientSize(options, clients_needed, seed);
    if (absl::Status s = CheckClientSize(n, clients_needed); !s.ok()) return s;
    rows_kept += n - SyntheticTrainCount(n);
  }
  rows_kept = std::min(rows_kept, cap);
  if (rows_kept > kMaxSyntheticRows) {
    return absl::ResourceExhaustedError(absl::StrCat(
        "synthetic: the test splits of ", num_clients, " clients have more than ",
        kMaxSyntheticRows, " rows; evaluate on fewer rows (a test row limit)"));
  }
  Rows rows;
  rows.Reserve(rows_kept, options.num_features);
  for (int k = 0; k < clients_needed; ++k) {
    const SyntheticClientModel m = SyntheticModelForClient(options, k, seed);
    const size_t n_train = SyntheticTrainCount(m.num_examples);
    const size_t want = std::min(m.num_examples - n_train, rows_kept - rows.y.size());
    AppendRows(m, k, seed, n_train, n_train + want, &rows);
  }
  return ToDataset(options, std::move(rows));
}

absl::StatusOr<FederatedData> GenerateSynthetic(const SyntheticOptions& options, int num_clients,
                                                uint64_t seed) {
  if (absl::Status s = ValidateOptions(options, num_clients); !s.ok()) return s;
  // Sizes first (cheap), so a fleet too large is refused before any row is
  // drawn; models are drawn one client at a time and dropped.
  std::vector<size_t> sizes(num_clients);
  size_t total = 0, train_total = 0;
  for (int k = 0; k < num_clients; ++k) {
    const size_t n = SyntheticClientSize(options, k, seed);
    if (n > kMaxSyntheticRows || total + n > kMaxSyntheticRows) {
      return absl::ResourceExhaustedError(absl::StrCat(
          "synthetic: ", num_clients, " clients need more than ", kMaxSyntheticRows,
          " rows (client ", k, " alone draws n_k = ", n,
          "; n_k = int(lognormal(4, 2)) + 50 is heavy-tailed); set examples_per_client or "
          "use fewer clients"));
    }
    sizes[k] = n;
    total += n;
    train_total += SyntheticTrainCount(n);
  }
  Rows train, test;
  train.Reserve(train_total, options.num_features);
  test.Reserve(total - train_total, options.num_features);
  FederatedData out;
  out.client_train.resize(num_clients);
  out.client_test.resize(num_clients);
  for (int k = 0; k < num_clients; ++k) {
    const SyntheticClientModel m = SyntheticModelForClient(options, k, seed);
    const size_t n_train = SyntheticTrainCount(sizes[k]);
    for (auto [rows, begin, end, index] :
         {std::tuple{&train, size_t{0}, n_train, &out.client_train[k]},
          std::tuple{&test, n_train, sizes[k], &out.client_test[k]}}) {
      index->resize(end - begin);
      std::iota(index->begin(), index->end(), static_cast<uint32_t>(rows->y.size()));
      AppendRows(m, k, seed, begin, end, rows);
    }
  }
  out.train = ToDataset(options, std::move(train));
  out.test = ToDataset(options, std::move(test));
  return out;
}

}  // namespace fedsim
