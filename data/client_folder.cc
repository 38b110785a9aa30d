// Client folders: IDX or CSV splits of one client's own data (see the header).
#include "data/client_folder.h"

#include <cinttypes>
#include <cstdio>
#include <filesystem>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "util/csv.h"
#include "util/file.h"
#include "util/status_macros.h"

namespace fedsim {
namespace {

namespace fs = std::filesystem;

std::string ShapeText(const ExampleShape& s) {
  if (s.height == 1 && s.width == 1) return absl::StrCat(s.channels, " features");
  return absl::StrCat(s.channels, "x", s.height, "x", s.width);
}

// `dir/name.gz` or `dir/name`, whichever exists (the first when both do).
std::optional<std::string> FindIdx(const std::string& dir, const char* name) {
  std::error_code ec;
  const fs::path base(dir);
  const std::string gz = (base / (std::string(name) + ".gz")).string();
  if (fs::exists(gz, ec)) return gz;
  const std::string plain = (base / name).string();
  if (fs::exists(plain, ec)) return plain;
  return std::nullopt;
}

bool Exists(const std::string& dir, const char* name) {
  std::error_code ec;
  return fs::exists(fs::path(dir) / name, ec);
}

absl::StatusOr<Dataset> LoadIdxSplit(const std::string& images_path, const std::string& labels_path,
                                     const ClientDataSpec& spec) {
  FEDSIM_ASSIGN_OR_RETURN(IdxArray images, ReadIdxFile(images_path));
  FEDSIM_ASSIGN_OR_RETURN(IdxArray labels, ReadIdxFile(labels_path));
  ExampleShape shape;
  if (images.dims.size() == 3) {
    shape = {1, static_cast<int>(images.dims[1]), static_cast<int>(images.dims[2])};
  } else if (images.dims.size() == 4) {
    shape = {static_cast<int>(images.dims[1]), static_cast<int>(images.dims[2]),
             static_cast<int>(images.dims[3])};
  } else {
    return absl::DataLossError(
        absl::StrCat(images_path,
                     ": expected 3 dims (count, height, width) or 4 (count, channels, height, "
                     "width), got ",
                     images.dims.size()));
  }
  if (shape.channels != spec.shape.channels || shape.height != spec.shape.height ||
      shape.width != spec.shape.width) {
    return absl::InvalidArgumentError(absl::StrCat(
        images_path, ": holds ", ShapeText(shape), " images, but the run's model takes ",
        ShapeText(spec.shape), "; this folder's data does not fit the scenario's dataset"));
  }
  FEDSIM_RETURN_IF_ERROR(CheckIdxLabelsFitImages(images.dims, images_path, labels, labels_path));
  std::vector<int32_t> y(labels.data.size());
  for (size_t i = 0; i < y.size(); ++i) {
    if (labels.data[i] >= spec.num_classes) {
      return absl::InvalidArgumentError(
          absl::StrCat(labels_path, ": label ", static_cast<int>(labels.data[i]), " at index ", i,
                       " is not a class of the run's model, which has ", spec.num_classes,
                       " (0 to ", spec.num_classes - 1, ")"));
    }
    y[i] = labels.data[i];
  }
  return Dataset::FromU8(shape, spec.num_classes, std::move(images.data), std::move(y));
}

// The header cells of CSV `text`: its first line that is neither blank nor a
// '#' comment (the rule of util/csv.h). Empty when there is none.
std::vector<std::string> CsvHeader(const std::string& text) {
  for (absl::string_view line : TextLines(text)) {
    const absl::string_view t = absl::StripAsciiWhitespace(line);
    if (t.empty() || t[0] == '#') continue;
    std::vector<std::string> cells;
    for (absl::string_view c : absl::StrSplit(t, ',')) {
      cells.emplace_back(absl::StripAsciiWhitespace(c));
    }
    return cells;
  }
  return {};
}

struct CsvSplit {
  Dataset data;
  std::vector<std::string> header;
};

absl::StatusOr<CsvSplit> LoadCsvSplit(const std::string& path, const ClientDataSpec& spec) {
  FEDSIM_ASSIGN_OR_RETURN(std::string text, ReadFileToString(path, {}));
  std::vector<std::string> header = CsvHeader(text);
  if (header.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(
        path, ":1: no header line: the first line must name the columns, one of them '",
        kClientLabelColumn, "'"));
  }
  int label_col = -1;
  for (size_t i = 0; i < header.size(); ++i) {
    if (header[i] != kClientLabelColumn) continue;
    if (label_col >= 0) {
      return absl::InvalidArgumentError(
          absl::StrCat(path, ": the header names the column '", kClientLabelColumn, "' twice"));
    }
    label_col = static_cast<int>(i);
  }
  if (label_col < 0) {
    return absl::InvalidArgumentError(
        absl::StrCat(path, ": the header has no column named '", kClientLabelColumn,
                     "' (the class of each row); got '", absl::StrJoin(header, ","), "'"));
  }
  const size_t features = header.size() - 1;
  if (features != static_cast<size_t>(spec.shape.dim())) {
    return absl::InvalidArgumentError(absl::StrCat(
        path, ": the header names ", features, " feature columns besides '", kClientLabelColumn,
        "', but the run's model takes ", spec.shape.dim(), " (", ShapeText(spec.shape), ")"));
  }
  std::vector<absl::string_view> columns(header.begin(), header.end());
  std::vector<float> x;
  std::vector<int32_t> y;
  FEDSIM_RETURN_IF_ERROR(ReadCsv(text, path, columns, [&](const CsvRow& row) -> absl::Status {
    FEDSIM_ASSIGN_OR_RETURN(int64_t label, row.Int(static_cast<size_t>(label_col)));
    if (label < 0 || label >= spec.num_classes) {
      return row.Error(absl::StrCat("label ", label,
                                    " is not a class of the run's model, which has ",
                                    spec.num_classes, " (0 to ", spec.num_classes - 1, ")"));
    }
    for (size_t i = 0; i < row.size(); ++i) {
      if (static_cast<int>(i) == label_col) continue;
      FEDSIM_ASSIGN_OR_RETURN(double v, row.Double(i));
      x.push_back(static_cast<float>(v));
    }
    y.push_back(static_cast<int32_t>(label));
    return absl::OkStatus();
  }));
  return CsvSplit{Dataset::FromF32(spec.shape, spec.num_classes, std::move(x), std::move(y)),
                  std::move(header)};
}

// Which format a client folder holds: its IDX training pair, or train.csv.
struct FolderFormat {
  std::string train_images, train_labels;  // IDX, when !csv
  bool csv = false;
};

// The checks every reader of a client folder makes first: a folder, holding
// one format, and (IDX) both files of its training pair.
absl::StatusOr<FolderFormat> FindFolderFormat(const std::string& dir) {
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) {
    return absl::NotFoundError(
        absl::StrCat("client data folder ", dir,
                     fs::exists(dir, ec) ? " is a file, not a folder" : " does not exist",
                     "; --data takes a folder per client (see 'fedsim split' for one)"));
  }
  const std::optional<std::string> train_images = FindIdx(dir, kClientTrainImages);
  const std::optional<std::string> train_labels = FindIdx(dir, kClientTrainLabels);
  const bool idx = train_images.has_value() || train_labels.has_value();
  const bool csv = Exists(dir, kClientTrainCsv);
  if (idx && csv) {
    return absl::InvalidArgumentError(absl::StrCat("client data folder ", dir,
                                                   " holds both IDX training files and ",
                                                   kClientTrainCsv, "; keep one format"));
  }
  if (!idx && !csv) {
    return absl::NotFoundError(absl::StrCat(
        "client data folder ", dir, " holds no training data: expected ", kClientTrainImages,
        "[.gz] with ", kClientTrainLabels, "[.gz] (images), or ", kClientTrainCsv, " (tabular)"));
  }
  if (idx && (!train_images || !train_labels)) {
    return absl::NotFoundError(absl::StrCat(
        "client data folder ", dir, " has ", train_images ? kClientTrainImages : kClientTrainLabels,
        " but not ", train_images ? kClientTrainLabels : kClientTrainImages, "[.gz]"));
  }
  FolderFormat f;
  f.csv = csv;
  if (idx) {
    f.train_images = *train_images;
    f.train_labels = *train_labels;
  }
  return f;
}

}  // namespace

std::string ClientNameOfFolder(const std::string& dir) {
  fs::path p = fs::path(dir).lexically_normal();
  if (p.filename().empty()) p = p.parent_path();  // "a/b/" -> "a/b"
  std::string name = p.filename().string();
  if (name == "." || name == "..") name = fs::absolute(p).lexically_normal().filename().string();
  return name;
}

absl::StatusOr<ClientFolder> LoadClientFolder(const std::string& dir, const ClientDataSpec& spec) {
  FEDSIM_ASSIGN_OR_RETURN(const FolderFormat format, FindFolderFormat(dir));
  ClientFolder out;
  out.dir = dir;
  out.name = ClientNameOfFolder(dir);
  if (!format.csv) {
    FEDSIM_ASSIGN_OR_RETURN(out.train,
                            LoadIdxSplit(format.train_images, format.train_labels, spec));
    const std::optional<std::string> test_images = FindIdx(dir, kClientTestImages);
    const std::optional<std::string> test_labels = FindIdx(dir, kClientTestLabels);
    if (test_images.has_value() != test_labels.has_value()) {
      return absl::NotFoundError(absl::StrCat(
          "client data folder ", dir, " has ", test_images ? kClientTestImages : kClientTestLabels,
          " but not ", test_images ? kClientTestLabels : kClientTestImages, "[.gz]"));
    }
    if (test_images) {
      FEDSIM_ASSIGN_OR_RETURN(out.test, LoadIdxSplit(*test_images, *test_labels, spec));
    }
  } else {
    out.tabular = true;
    const std::string train_path = (fs::path(dir) / kClientTrainCsv).string();
    FEDSIM_ASSIGN_OR_RETURN(CsvSplit train, LoadCsvSplit(train_path, spec));
    out.train = std::move(train.data);
    if (Exists(dir, kClientTestCsv)) {
      const std::string test_path = (fs::path(dir) / kClientTestCsv).string();
      FEDSIM_ASSIGN_OR_RETURN(CsvSplit test, LoadCsvSplit(test_path, spec));
      if (test.header != train.header) {
        return absl::InvalidArgumentError(
            absl::StrCat(test_path, ": its header '", absl::StrJoin(test.header, ","),
                         "' differs from ", train_path, "'s '", absl::StrJoin(train.header, ","),
                         "'; both must name the same ", "columns in the same order"));
      }
      out.test = std::move(test.data);
    }
  }
  if (out.train.size() == 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("client data folder ", dir, ": the training split holds no examples"));
  }
  return out;
}

namespace {

// Data rows of CSV `text`: lines that are neither blank nor '#' comments,
// less the header.
uint64_t CsvDataRows(const std::string& text) {
  uint64_t lines = 0;
  for (absl::string_view line : TextLines(text)) {
    const absl::string_view t = absl::StripAsciiWhitespace(line);
    if (!t.empty() && t[0] != '#') ++lines;
  }
  return lines > 0 ? lines - 1 : 0;
}

absl::StatusOr<uint64_t> CountIdxLabels(const std::string& path) {
  FEDSIM_ASSIGN_OR_RETURN(IdxArray labels, ReadIdxFile(path));
  if (labels.dims.size() != 1) {
    return absl::DataLossError(
        absl::StrCat(path, ": a labels file has 1 dimension, this one ", labels.dims.size()));
  }
  return static_cast<uint64_t>(labels.dims[0]);
}

}  // namespace

absl::StatusOr<ClientFolderCounts> CountClientFolder(const std::string& dir) {
  FEDSIM_ASSIGN_OR_RETURN(const FolderFormat format, FindFolderFormat(dir));
  ClientFolderCounts out;
  out.name = ClientNameOfFolder(dir);
  if (!format.csv) {
    FEDSIM_ASSIGN_OR_RETURN(out.train, CountIdxLabels(format.train_labels));
    if (const std::optional<std::string> test = FindIdx(dir, kClientTestLabels)) {
      FEDSIM_ASSIGN_OR_RETURN(out.test, CountIdxLabels(*test));
    }
  } else {
    FEDSIM_ASSIGN_OR_RETURN(std::string train,
                            ReadFileToString((fs::path(dir) / kClientTrainCsv).string(), {}));
    out.train = CsvDataRows(train);
    if (Exists(dir, kClientTestCsv)) {
      FEDSIM_ASSIGN_OR_RETURN(std::string test,
                              ReadFileToString((fs::path(dir) / kClientTestCsv).string(), {}));
      out.test = CsvDataRows(test);
    }
  }
  if (out.train == 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("client data folder ", dir, ": the training split holds no examples"));
  }
  return out;
}

namespace {

absl::Status WriteIdxSplit(const fs::path& dir, const char* images_name, const char* labels_name,
                           const Dataset& data) {
  if (data.num_classes() > 256) {
    return absl::InvalidArgumentError(absl::StrCat("IDX labels are bytes, so a dataset of ",
                                                   data.num_classes(),
                                                   " classes cannot be written"));
  }
  const ExampleShape& s = data.shape();
  std::vector<uint32_t> dims = {static_cast<uint32_t>(data.size())};
  if (s.channels != 1) dims.push_back(static_cast<uint32_t>(s.channels));
  dims.push_back(static_cast<uint32_t>(s.height));
  dims.push_back(static_cast<uint32_t>(s.width));
  FEDSIM_RETURN_IF_ERROR(
      WriteIdxFile((dir / (std::string(images_name) + ".gz")).string(), dims, data.stored_bytes()));
  std::vector<uint8_t> labels(data.labels().begin(), data.labels().end());
  return WriteIdxFile((dir / (std::string(labels_name) + ".gz")).string(),
                      {static_cast<uint32_t>(labels.size())}, labels);
}

absl::Status WriteCsvSplit(const fs::path& path, const Dataset& data) {
  const size_t d = static_cast<size_t>(data.dim());
  std::string text;
  for (size_t j = 0; j < d; ++j) absl::StrAppend(&text, "x", j, ",");
  absl::StrAppend(&text, kClientLabelColumn, "\n");
  const std::span<const float> x = data.stored_floats();
  char buf[32];
  for (size_t i = 0; i < data.size(); ++i) {
    for (size_t j = 0; j < d; ++j) {
      // %.9g: the shortest form that reads back as the same float.
      std::snprintf(buf, sizeof(buf), "%.9g,", static_cast<double>(x[i * d + j]));
      text += buf;
    }
    absl::StrAppend(&text, data.labels()[i], "\n");
  }
  return WriteTextFile(path.string(), text);
}

void RemoveIfThere(const fs::path& dir, const std::string& name) {
  std::error_code ec;
  fs::remove(dir / name, ec);
  fs::remove(dir / (name + ".gz"), ec);
}

}  // namespace

absl::Status WriteClientFolder(const std::string& dir, const Dataset& train, const Dataset* test) {
  if (train.size() == 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("client data folder ", dir, ": the training split holds no examples"));
  }
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) {
    return absl::UnavailableError(absl::StrCat("cannot create ", dir, ": ", ec.message()));
  }
  const fs::path p(dir);
  // A folder holds one format, and a test split only when one is written.
  for (const char* name : {kClientTrainImages, kClientTrainLabels, kClientTestImages,
                           kClientTestLabels, kClientTrainCsv, kClientTestCsv}) {
    RemoveIfThere(p, name);
  }
  if (!train.is_float()) {
    FEDSIM_RETURN_IF_ERROR(WriteIdxSplit(p, kClientTrainImages, kClientTrainLabels, train));
    if (test != nullptr) {
      FEDSIM_RETURN_IF_ERROR(WriteIdxSplit(p, kClientTestImages, kClientTestLabels, *test));
    }
    return absl::OkStatus();
  }
  FEDSIM_RETURN_IF_ERROR(WriteCsvSplit(p / kClientTrainCsv, train));
  if (test != nullptr) FEDSIM_RETURN_IF_ERROR(WriteCsvSplit(p / kClientTestCsv, *test));
  return absl::OkStatus();
}

}  // namespace fedsim
