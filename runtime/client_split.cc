// `fedsim split`'s work: client folders from a run's data (see the header).
#include "runtime/client_split.h"

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <numeric>
#include <string>
#include <utility>
#include <vector>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "data/client_folder.h"
#include "data/synthetic.h"
#include "runtime/local_recipe.h"
#include "util/csv.h"
#include "util/file.h"
#include "util/rng.h"
#include "util/status_macros.h"

namespace fedsim {

Partition DealTestRows(std::span<const uint32_t> train_rows, size_t test_rows, uint64_t seed) {
  const size_t n = train_rows.size();
  const uint64_t total = std::accumulate(train_rows.begin(), train_rows.end(), uint64_t{0});
  // Quotas floor(test_rows * n_i / total), exactly (128-bit products), then
  // one more row for the largest remainders until every row has a client.
  std::vector<uint64_t> quota(n);
  std::vector<uint64_t> remainder(n);
  uint64_t dealt = 0;
  for (size_t i = 0; i < n; ++i) {
    const unsigned __int128 p = static_cast<unsigned __int128>(test_rows) * train_rows[i];
    quota[i] = static_cast<uint64_t>(p / total);
    remainder[i] = static_cast<uint64_t>(p % total);
    dealt += quota[i];
  }
  std::vector<size_t> order(n);
  std::iota(order.begin(), order.end(), size_t{0});
  std::stable_sort(order.begin(), order.end(),
                   [&](size_t a, size_t b) { return remainder[a] > remainder[b]; });
  for (size_t k = 0; dealt < test_rows; ++k, ++dealt) ++quota[order[k]];

  std::vector<uint32_t> rows(test_rows);
  std::iota(rows.begin(), rows.end(), 0u);
  Rng(seed, "split-test").Shuffle(std::span<uint32_t>(rows));
  Partition out(n);
  size_t next = 0;
  for (size_t i = 0; i < n; ++i) {
    out[i].assign(rows.begin() + static_cast<std::ptrdiff_t>(next),
                  rows.begin() + static_cast<std::ptrdiff_t>(next + quota[i]));
    std::sort(out[i].begin(), out[i].end());
    next += quota[i];
  }
  return out;
}

std::string ClientFolderName(uint32_t client, size_t num_clients) {
  const size_t digits = std::max<size_t>(4, std::to_string(num_clients - 1).size());
  std::string id = std::to_string(client);
  if (id.size() < digits) id.insert(0, digits - id.size(), '0');
  return absl::StrCat("client-", id);
}

absl::StatusOr<std::vector<SplitClient>> SplitClients(
    const config::Scenario& resolved, const std::string& scenario_hash, const RunData& data,
    const std::string& out_dir, const std::function<void(size_t, size_t)>& progress) {
  const size_t num_clients = data.num_clients();
  Partition test_rows;
  if (!data.generated)
    test_rows = DealTestRows(data.client_rows, data.test->size(), resolved.seed());
  std::vector<SplitClient> out;
  out.reserve(num_clients);
  for (uint32_t i = 0; i < num_clients; ++i) {
    SplitClient c;
    c.name = ClientFolderName(i, num_clients);
    Dataset train, test;
    if (data.generated) {
      FEDSIM_ASSIGN_OR_RETURN(
          train, GenerateSyntheticClient(data.generated->options, static_cast<int>(i),
                                         data.generated->seed, SyntheticSplit::kTrain));
      FEDSIM_ASSIGN_OR_RETURN(test,
                              GenerateSyntheticClient(data.generated->options, static_cast<int>(i),
                                                      data.generated->seed, SyntheticSplit::kTest));
    } else {
      train = data.train->Subset(data.clients[i]);
      test = data.test->Subset(test_rows[i]);
    }
    c.train_rows = train.size();
    c.test_rows = test.size();
    const std::string dir = (std::filesystem::path(out_dir) / c.name).string();
    FEDSIM_RETURN_IF_ERROR(WriteClientFolder(dir, train, test.size() > 0 ? &test : nullptr));
    out.push_back(std::move(c));
    if (progress) progress(i + 1, num_clients);
  }
  const std::string index =
      ClientListText(out, absl::StrCat("fedsim split of scenario '", resolved.name(), "', seed ",
                                       resolved.seed(), ", scenario hash ", scenario_hash));
  const std::string index_path = (std::filesystem::path(out_dir) / "index.csv").string();
  FEDSIM_RETURN_IF_ERROR(WriteTextFile(index_path, index));
  return out;
}

std::string ClientListText(const std::vector<SplitClient>& clients, const std::string& comment) {
  std::string text;
  for (absl::string_view line : absl::StrSplit(comment, '\n', absl::SkipEmpty())) {
    absl::StrAppend(&text, "# ", line, "\n");
  }
  absl::StrAppend(&text, "client,name,train_rows,test_rows\n");
  for (size_t i = 0; i < clients.size(); ++i) {
    absl::StrAppend(&text, i, ",", clients[i].name, ",", clients[i].train_rows, ",",
                    clients[i].test_rows, "\n");
  }
  return text;
}

absl::StatusOr<std::vector<SplitClient>> ReadClientList(const std::string& path,
                                                        size_t num_clients) {
  std::vector<SplitClient> out;
  absl::flat_hash_set<std::string> names;
  FEDSIM_RETURN_IF_ERROR(ReadCsvFile(
      path, {"client", "name", "train_rows", "test_rows"}, [&](const CsvRow& row) -> absl::Status {
        FEDSIM_ASSIGN_OR_RETURN(uint64_t client, row.Uint(0));
        if (client != out.size()) {
          return row.Error(absl::StrCat("client ", client, " where client ", out.size(),
                                        " was expected: list the clients 0, 1, 2, ... in order"));
        }
        SplitClient c;
        c.name = std::string(row[1]);
        if (c.name.empty() || c.name.find('/') != std::string::npos || c.name == "." ||
            c.name == "..") {
          return row.Error(absl::StrCat("name '", c.name,
                                        "' is not a folder name (the last part of a --data path)"));
        }
        if (!names.insert(c.name).second) {
          return row.Error(absl::StrCat("name '", c.name, "' is listed twice; names are unique"));
        }
        FEDSIM_ASSIGN_OR_RETURN(c.train_rows, row.Uint(2));
        FEDSIM_ASSIGN_OR_RETURN(c.test_rows, row.Uint(3));
        out.push_back(std::move(c));
        return absl::OkStatus();
      }));
  if (out.size() != num_clients) {
    return absl::InvalidArgumentError(
        absl::StrCat(path, ": lists ", out.size(),
                     " clients, but the scenario has num_clients = ", num_clients));
  }
  return out;
}

RunData RunDataFromClientList(const ModelConfig& model, const std::vector<SplitClient>& list,
                              const config::LocalTraining& local) {
  RunData data;
  data.model = model;
  const LocalSchedule schedule = ScheduleFromConfig(local);
  for (const SplitClient& c : list) {
    data.client_rows.push_back(static_cast<uint32_t>(c.train_rows));
    data.examples_per_task.push_back(schedule.ExamplesFor(c.train_rows));
  }
  data.clients.assign(list.size(), {});
  const ExampleShape shape = model.example_shape();
  data.test = std::make_shared<const Dataset>(
      Dataset::FromF32(shape, model.num_classes, std::vector<float>(), std::vector<int32_t>()));
  return data;
}

RunData RunDataFromClientFolders(const ModelConfig& model, size_t num_clients,
                                 const std::vector<ClientFolder>& folders,
                                 const std::vector<uint32_t>& slots) {
  RunData data;
  data.model = model;
  data.client_rows.assign(num_clients, 0);
  data.clients.assign(num_clients, {});
  data.examples_per_task.assign(num_clients, 0);
  const ExampleShape shape = model.example_shape();
  const size_t d = static_cast<size_t>(shape.dim());
  // The folders' splits in one dataset, bytes kept as bytes unless a
  // folder holds floats; client `slots[k]` gets the rows of folder k.
  auto concat = [&](auto split_of, Partition* rows_of) {
    bool bytes = true;
    size_t rows = 0;
    for (const ClientFolder& f : folders) {
      if (const Dataset* t = split_of(f)) {
        bytes = bytes && !t->is_float();
        rows += t->size();
      }
    }
    std::vector<uint8_t> x8;
    std::vector<float> x32;
    std::vector<int32_t> y;
    y.reserve(rows);
    (bytes ? x8.reserve(rows * d) : x32.reserve(rows * d));
    for (size_t k = 0; k < folders.size(); ++k) {
      const Dataset* t = split_of(folders[k]);
      if (t == nullptr) continue;
      std::vector<uint32_t>& ids = (*rows_of)[slots[k]];
      for (size_t i = 0; i < t->size(); ++i) ids.push_back(static_cast<uint32_t>(y.size() + i));
      if (bytes) {
        x8.insert(x8.end(), t->stored_bytes().begin(), t->stored_bytes().end());
      } else if (t->is_float()) {
        x32.insert(x32.end(), t->stored_floats().begin(), t->stored_floats().end());
      } else {
        // As Dataset::Gather scales bytes: x / 255 (a division, not a product).
        for (uint8_t v : t->stored_bytes()) x32.push_back(static_cast<float>(v) / 255.0f);
      }
      y.insert(y.end(), t->labels().begin(), t->labels().end());
    }
    return std::make_shared<const Dataset>(
        bytes ? Dataset::FromU8(shape, model.num_classes, std::move(x8), std::move(y))
              : Dataset::FromF32(shape, model.num_classes, std::move(x32), std::move(y)));
  };
  data.train = concat([](const ClientFolder& f) { return &f.train; }, &data.clients);
  data.client_test.assign(num_clients, {});
  data.test =
      concat([](const ClientFolder& f) { return f.test ? &*f.test : nullptr; }, &data.client_test);
  for (size_t k = 0; k < folders.size(); ++k) {
    data.client_rows[slots[k]] = static_cast<uint32_t>(folders[k].train.size());
  }
  return data;
}

}  // namespace fedsim
