#include "runtime/run_setup.h"

#include <utility>

#include "absl/strings/str_cat.h"
#include "runtime/local_recipe.h"
#include "runtime/model_setup.h"
#include "util/rng.h"

namespace fedsim {
namespace {

// Prefixes a partitioner's error with the scenario field that caused it and
// what to change, keeping the partitioner's own explanation.
absl::Status PartitionError(const absl::Status& s, const std::string& field,
                            const std::string& change) {
  return absl::InvalidArgumentError(absl::StrCat(field, ": ", s.message(), "; ", change));
}

}  // namespace


absl::StatusOr<RunData> BuildRunData(const config::Scenario& resolved,
                                     const std::string& scenario_dir) {
  const uint32_t n = resolved.num_clients();
  if (n == 0 || n > static_cast<uint32_t>(INT32_MAX)) {
    return absl::InvalidArgumentError(
        absl::StrCat("num_clients: ", n, " is out of range; use 1 .. 2^31-1"));
  }
  const int num_clients = static_cast<int>(n);
  const uint64_t seed = resolved.seed();
  const config::Partition& part = resolved.partition();
  RunData data;

  // Data.
  std::vector<std::vector<uint32_t>> natural;
  if (resolved.dataset().has_synthetic()) {
    const auto& syn = resolved.dataset().synthetic();
    SyntheticOptions options;
    options.alpha = syn.alpha();
    options.beta = syn.beta();
    options.iid = syn.iid();
    options.examples_per_client = syn.examples_per_client();
    absl::StatusOr<FederatedData> fed =
        GenerateSynthetic(options, num_clients, Rng(seed, "synthetic").NextU64());
    if (!fed.ok()) {
      return absl::Status(fed.status().code(),
                          absl::StrCat("dataset.synthetic: ", fed.status().message()));
    }
    data.train = std::make_shared<const Dataset>(std::move(fed->train));
    data.test = std::make_shared<const Dataset>(std::move(fed->test));
    natural = std::move(fed->client_train);
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
    case config::Partition::kNatural: {
      if (natural.empty()) {
        return absl::InvalidArgumentError(
            "partition.natural: only Synthetic data comes split per client; use iid, "
            "dirichlet, label_mix or shards");
      }
      data.clients = std::move(natural);
      break;
    }
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

  // Model and local training.
  absl::StatusOr<ModelConfig> model =
      ModelConfigFromProto(resolved.model(), train.shape(), train.num_classes(),
                           resolved.numeric());
  if (!model.ok()) return model.status();
  data.model = std::move(*model);
  const LocalSchedule schedule = ScheduleFromConfig(resolved.local());

  // Per-client figures.
  const int classes = train.num_classes();
  const auto labels = train.labels();
  data.examples_per_task.resize(n);
  data.label_distribution.assign(n, std::vector<double>(classes, 0.0));
  for (uint32_t i = 0; i < n; ++i) {
    const auto& rows_i = data.clients[i];
    data.examples_per_task[i] = schedule.ExamplesFor(rows_i.size());
    if (rows_i.empty()) continue;
    std::vector<uint64_t> counts(classes, 0);
    for (uint32_t r : rows_i) ++counts[labels[r]];
    for (int c = 0; c < classes; ++c) {
      data.label_distribution[i][c] =
          static_cast<double>(counts[c]) / static_cast<double>(rows_i.size());
    }
  }
  return data;
}

}  // namespace fedsim
