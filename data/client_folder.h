// One client's own data on disk: the folder a deployed client process serves
// (`fedsim client --data=DIR`) and that `fedsim split` writes for each
// simulated client, so that a study moves between simulation and deployment
// on identical data.
//
// A client folder holds a training split and, optionally, a test split, in
// one of two formats (never both):
//
//   Images, IDX files as Fashion-MNIST ships them (each may be gzipped, with
//   ".gz" added to the name, or plain):
//     train-images-idx3-ubyte   unsigned bytes, dims {n, height, width} or
//                               {n, channels, height, width}
//     train-labels-idx1-ubyte   unsigned bytes, dims {n}
//     test-images-idx3-ubyte, test-labels-idx1-ubyte   (optional, together)
//   Pixels are scaled to [0, 1] (x / 255) when they are trained on, exactly
//   as the simulated Fashion-MNIST is.
//
//   Tabular, CSV (the reader of util/csv.h: '#' comment lines, no quoting):
//     train.csv, test.csv (optional)
//   The header names the columns. The column named "label" (anywhere in the
//   row) holds the class, an integer in [0, classes); every other column is
//   a feature, a finite number, in the order of the header. test.csv must
//   have the same header as train.csv. Example:
//     x0,x1,x2,label
//     0.12,-1.5,3,7
//
// The client's name is the folder's name (its last path component): rename
// the folder to rename the client. Names are what a deployment's server maps
// to client slots, so they must be unique among a run's clients.
//
// Thread safety: pure functions of the files.
#ifndef FEDSIM_DATA_CLIENT_FOLDER_H_
#define FEDSIM_DATA_CLIENT_FOLDER_H_

#include <optional>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "data/dataset.h"

namespace fedsim {

// File names of the two formats (IDX names without ".gz").
inline constexpr char kClientTrainImages[] = "train-images-idx3-ubyte";
inline constexpr char kClientTrainLabels[] = "train-labels-idx1-ubyte";
inline constexpr char kClientTestImages[] = "test-images-idx3-ubyte";
inline constexpr char kClientTestLabels[] = "test-labels-idx1-ubyte";
inline constexpr char kClientTrainCsv[] = "train.csv";
inline constexpr char kClientTestCsv[] = "test.csv";
inline constexpr char kClientLabelColumn[] = "label";

// What the run's model takes: the example shape and the number of classes.
struct ClientDataSpec {
  ExampleShape shape;
  int num_classes = 0;
};

struct ClientFolder {
  std::string name;      // the folder's last path component
  std::string dir;       // the folder as given
  bool tabular = false;  // CSV (features stored as float) rather than IDX images
  Dataset train;
  std::optional<Dataset> test;  // when the folder has a test split
};

// The client name of the folder `dir`: its last path component ("a/b/" and
// "a/b" both give "b"; "." gives the current folder's name).
std::string ClientNameOfFolder(const std::string& dir);

// Reads the folder `dir` and checks it against `spec`: the example shape
// (for CSV, channels = height = 1 and width = the number of features) and
// every label < spec.num_classes.
// Errors name the folder or the file (CSV: file:line) and say what to do:
//   NotFound: no such folder, or neither IDX training files nor train.csv
//     in it (lists what it looked for), or only one file of an IDX pair;
//   InvalidArgument: both formats at once, a shape or class count other than
//     the model's (both named), a bad CSV cell or header, a training split
//     without rows, test.csv with another header than train.csv;
//   DataLoss: a corrupt IDX file or image/label counts that differ.
absl::StatusOr<ClientFolder> LoadClientFolder(const std::string& dir, const ClientDataSpec& spec);

// How many examples a client folder holds, read without a model to check
// them against: the labels files' counts (IDX) or the data rows (CSV). What a
// worker reports when it registers, before it knows the run's model.
struct ClientFolderCounts {
  std::string name;  // ClientNameOfFolder(dir)
  uint64_t train = 0;
  uint64_t test = 0;  // 0 when the folder has no test split
};
// Errors: NotFound as LoadClientFolder's (no folder, no training data, half
// an IDX pair); InvalidArgument for both formats at once or a training split
// without rows; DataLoss for a corrupt labels file.
absl::StatusOr<ClientFolderCounts> CountClientFolder(const std::string& dir);

// Writes `train` (and `test` when given) into the folder `dir` (created with
// its parents when missing) in the format that suits the dataset: IDX (gzip)
// for byte images, CSV with columns x0..x{d-1},label for float features.
// Existing files of the format are replaced. InvalidArgument for an empty
// train split; Unavailable when a file cannot be written.
absl::Status WriteClientFolder(const std::string& dir, const Dataset& train, const Dataset* test);

}  // namespace fedsim

#endif  // FEDSIM_DATA_CLIENT_FOLDER_H_
