#include "runtime/run_setup.h"

#include <algorithm>
#include <new>
#include <numeric>
#include <utility>

#include "absl/strings/str_cat.h"
#include "data/synthetic.h"
#include "runtime/local_recipe.h"
#include "runtime/model_setup.h"
#include "util/rng.h"
#include "util/status_macros.h"

namespace fedsim {
namespace {

// Prefixes a partitioner's error with the scenario field that caused it and
// what to change, keeping the partitioner's own explanation.
absl::Status PartitionError(const absl::Status& s, const std::string& field,
                            const std::string& change) {
  return absl::InvalidArgumentError(absl::StrCat(field, ": ", s.message(), "; ", change));
}

absl::Status SyntheticError(const absl::Status& s) {
  return absl::Status(s.code(), absl::StrCat("dataset.synthetic: ", s.message()));
}

// Synthetic data with the natural partition: each client's size now, its
// rows when it trains; the test set now, only as many rows as are evaluated.
absl::Status SetUpGeneratedClients(const config::Scenario& resolved, RunData* data) {
  const int num_clients = static_cast<int>(resolved.num_clients());
  GeneratedClients gen;
  gen.options = SyntheticOptionsFromConfig(resolved.dataset().synthetic());
  gen.seed = Rng(resolved.seed(), "synthetic").NextU64();
  data->client_rows.resize(num_clients);
  absl::StatusOr<Dataset> test =
      GenerateSyntheticTestSet(gen.options, num_clients, gen.seed, resolved.eval().test_limit());
  if (!test.ok()) return SyntheticError(test.status());
  data->test = std::make_shared<const Dataset>(*std::move(test));
  uint32_t largest = 0;
  for (int k = 0; k < num_clients; ++k) {
    const size_t n = SyntheticClientSize(gen.options, k, gen.seed);
    if (n > kMaxSyntheticRows) {
      return absl::ResourceExhaustedError(absl::StrCat(
          "dataset.synthetic: client ", k, " draws n_k = ", n, " rows, more than ",
          kMaxSyntheticRows, " (n_k = int(lognormal(4, 2)) + 50 is heavy-tailed); set "
          "dataset.synthetic.examples_per_client or change the seed"));
    }
    data->client_rows[k] = static_cast<uint32_t>(SyntheticTrainCount(n));
    largest = std::max(largest, data->client_rows[k]);
  }
  gen.row_ids.resize(largest);
  std::iota(gen.row_ids.begin(), gen.row_ids.end(), 0u);
  data->generated = std::move(gen);
  return absl::OkStatus();
}

// Every other dataset and partition: all rows in memory, clients as index
// lists into them.
absl::Status LoadAndPartition(const config::Scenario& resolved, const std::string& scenario_dir,
                              RunData* out) {
  const int num_clients = static_cast<int>(resolved.num_clients());
  const uint32_t n = resolved.num_clients();
  const uint64_t seed = resolved.seed();
  const config::Partition& part = resolved.partition();
  RunData& data = *out;

  // Data.
  if (resolved.dataset().has_synthetic()) {
    absl::StatusOr<FederatedData> fed =
        GenerateSynthetic(SyntheticOptionsFromConfig(resolved.dataset().synthetic()), num_clients,
                          Rng(seed, "synthetic").NextU64());
    if (!fed.ok()) return SyntheticError(fed.status());
    data.train = std::make_shared<const Dataset>(std::move(fed->train));
    data.test = std::make_shared<const Dataset>(std::move(fed->test));
  } else {
    const auto& fm = resolved.dataset().fashion_mnist();
    std::string dir = fm.has_dir() ? fm.dir() : std::string(kDefaultFashionMnistDir);
    if (!dir.empty() && dir[0] != '/' && !scenario_dir.empty()) {
      dir = absl::StrCat(scenario_dir, "/", dir);
    }
    absl::StatusOr<TrainTest> tt = LoadFashionMnist(dir, fm.train_limit(), fm.test_limit());
    if (!tt.ok()) return tt.status();
    data.train = std::make_shared<const Dataset>(std::move(tt->train));
    data.test = std::make_shared<const Dataset>(std::move(tt->test));
  }
  const Dataset& train = *data.train;
  const size_t rows = train.size();

  // Partition.
  const uint64_t partition_seed = Rng(seed, "partition").NextU64();
  switch (part.kind_case()) {
    case config::Partition::kNatural:
      // Synthetic data with the natural partition took the generated path.
      return absl::InvalidArgumentError(
          "partition.natural: only Synthetic data comes split per client; use iid, "
          "dirichlet, label_mix or shards");
    case config::Partition::kIid:
    case config::Partition::KIND_NOT_SET: {
      if (static_cast<size_t>(n) > rows) {
        return absl::InvalidArgumentError(absl::StrCat(
            "num_clients: ", n, " clients but only ", rows,
            " training rows, so some client would get none; lower num_clients or use more data"));
      }
      absl::StatusOr<Partition> p = PartitionIid(rows, num_clients, partition_seed);
      if (!p.ok()) return PartitionError(p.status(), "partition.iid", "lower num_clients");
      data.clients = std::move(*p);
      break;
    }
    case config::Partition::kDirichlet: {
      const auto& d = part.dirichlet();
      if (static_cast<uint64_t>(d.min_size()) * n > rows) {
        return absl::InvalidArgumentError(
            absl::StrCat("partition.dirichlet.min_size: ", d.min_size(), " rows for each of ", n,
                         " clients needs ", static_cast<uint64_t>(d.min_size()) * n,
                         " rows but there are ", rows, "; lower min_size or num_clients"));
      }
      absl::StatusOr<Partition> p =
          PartitionDirichlet(train.labels(), train.num_classes(), num_clients, d.alpha(),
                             d.min_size(), partition_seed);
      if (!p.ok()) {
        return PartitionError(p.status(), "partition.dirichlet", "lower min_size or raise alpha");
      }
      data.clients = std::move(*p);
      break;
    }
    case config::Partition::kLabelMix: {
      absl::StatusOr<Partition> p = PartitionLabelMix(train.labels(), train.num_classes(),
                                                      num_clients, part.label_mix().alpha(),
                                                      partition_seed);
      if (!p.ok()) {
        return PartitionError(p.status(), "partition.label_mix", "raise alpha or lower num_clients");
      }
      data.clients = std::move(*p);
      break;
    }
    case config::Partition::kShards: {
      const uint32_t spc = part.shards().shards_per_client();
      const uint64_t shards = static_cast<uint64_t>(spc) * n;
      if (spc == 0 || shards > rows || spc > static_cast<uint32_t>(INT32_MAX)) {
        return absl::InvalidArgumentError(
            absl::StrCat("partition.shards.shards_per_client: ", spc, " shards for each of ", n,
                         " clients makes ", shards, " shards but there are only ", rows,
                         " training rows; lower shards_per_client or num_clients"));
      }
      absl::StatusOr<Partition> p =
          PartitionShards(train.labels(), num_clients, static_cast<int>(spc), partition_seed);
      if (!p.ok()) {
        return PartitionError(p.status(), "partition.shards",
                              "lower shards_per_client or num_clients");
      }
      data.clients = std::move(*p);
      break;
    }
  }
  if (data.clients.size() != n) {
    return absl::InternalError(
        absl::StrCat("partition gave ", data.clients.size(), " clients, expected ", n));
  }

  data.client_rows.resize(n);
  for (uint32_t i = 0; i < n; ++i) {
    data.client_rows[i] = static_cast<uint32_t>(data.clients[i].size());
  }
  return absl::OkStatus();
}

absl::StatusOr<RunData> BuildRunDataOrThrow(const config::Scenario& resolved,
                                            const std::string& scenario_dir) {
  RunData data;
  if (resolved.dataset().has_synthetic() && resolved.partition().has_natural()) {
    FEDSIM_RETURN_IF_ERROR(SetUpGeneratedClients(resolved, &data));
  } else {
    FEDSIM_RETURN_IF_ERROR(LoadAndPartition(resolved, scenario_dir, &data));
  }
  // Model and per-client figures.
  const Dataset& shape_source = data.train != nullptr ? *data.train : *data.test;
  FEDSIM_ASSIGN_OR_RETURN(data.model,
                          ModelConfigFromProto(resolved.model(), shape_source.shape(),
                                               shape_source.num_classes(), resolved.numeric()));
  const LocalSchedule schedule = ScheduleFromConfig(resolved.local());
  data.examples_per_task.resize(data.num_clients());
  for (size_t i = 0; i < data.num_clients(); ++i) {
    data.examples_per_task[i] = schedule.ExamplesFor(data.client_rows[i]);
  }
  return data;
}

std::vector<double> Fractions(std::span<const int32_t> labels, std::span<const uint32_t> rows,
                              int classes) {
  std::vector<double> out(classes, 0.0);
  if (rows.empty()) return out;
  std::vector<uint64_t> counts(classes, 0);
  for (uint32_t r : rows) ++counts[labels[r]];
  for (int c = 0; c < classes; ++c) {
    out[c] = static_cast<double>(counts[c]) / static_cast<double>(rows.size());
  }
  return out;
}

}  // namespace

absl::StatusOr<RunData> BuildRunData(const config::Scenario& resolved,
                                     const std::string& scenario_dir) {
  const uint32_t n = resolved.num_clients();
  if (n == 0 || n > static_cast<uint32_t>(INT32_MAX)) {
    return absl::InvalidArgumentError(
        absl::StrCat("num_clients: ", n, " is out of range; use 1 .. 2^31-1"));
  }
  // Validation refuses runs whose estimate exceeds limits.memory_budget_mb
  // (config/memory.h); without a budget, memory may still run out here, and
  // that is an error to report, not an exception to escape.
  try {
    return BuildRunDataOrThrow(resolved, scenario_dir);
  } catch (const std::bad_alloc&) {
    return absl::ResourceExhaustedError(absl::StrCat(
        "out of memory building the data of ", n, " clients; lower num_clients, or set "
        "limits.memory_budget_mb so that fedsim validate refuses what does not fit"));
  }
}

SyntheticOptions SyntheticOptionsFromConfig(const config::Synthetic& syn) {
  SyntheticOptions options;
  options.alpha = syn.alpha();
  options.beta = syn.beta();
  options.iid = syn.iid();
  options.examples_per_client = syn.examples_per_client();
  return options;
}

absl::StatusOr<ClientTrainData> ClientTrainRows(const RunData& data, uint32_t client) {
  if (client >= data.num_clients()) {
    return absl::InvalidArgumentError(absl::StrCat("client ", client, " is out of range: the run has ",
                                                   data.num_clients(), " clients"));
  }
  if (!data.generated.has_value()) {
    return ClientTrainData{data.train, data.clients[client]};
  }
  const GeneratedClients& gen = *data.generated;
  absl::StatusOr<Dataset> rows = GenerateSyntheticClient(gen.options, static_cast<int>(client),
                                                         gen.seed, SyntheticSplit::kTrain);
  if (!rows.ok()) return SyntheticError(rows.status());
  const size_t size = rows->size();
  return ClientTrainData{std::make_shared<const Dataset>(*std::move(rows)),
                         std::span<const uint32_t>(gen.row_ids).first(size)};
}

absl::StatusOr<std::vector<double>> ClientLabelDistribution(const RunData& data,
                                                            uint32_t client) {
  FEDSIM_ASSIGN_OR_RETURN(ClientTrainData rows, ClientTrainRows(data, client));
  return Fractions(rows.data->labels(), rows.rows, rows.data->num_classes());
}

absl::StatusOr<std::vector<std::vector<double>>> LabelDistributions(const RunData& data) {
  std::vector<std::vector<double>> out(data.num_clients());
  for (uint32_t i = 0; i < out.size(); ++i) {
    FEDSIM_ASSIGN_OR_RETURN(out[i], ClientLabelDistribution(data, i));
  }
  return out;
}

}  // namespace fedsim
