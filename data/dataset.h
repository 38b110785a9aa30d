// In-memory labelled datasets, their readers and generators.
//
// A Dataset is immutable after construction and safe to read from many
// threads at once. Workers load a dataset once and serve every virtual client
// from it through index lists (see partition.h).
#ifndef FEDSIM_DATA_DATASET_H_
#define FEDSIM_DATA_DATASET_H_

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace fedsim {

// Shape of one example: channels x height x width (vectors are dim x 1 x 1).
struct ExampleShape {
  int channels = 1;
  int height = 1;
  int width = 1;
  int dim() const { return channels * height * width; }
};

class Dataset {
 public:
  Dataset() = default;
  // Pixels stored compactly; Gather scales them to [0, 1] (x / 255).
  // REQUIRES: x.size() == y.size() * shape.dim(); labels in [0, num_classes).
  static Dataset FromU8(ExampleShape shape, int num_classes, std::vector<uint8_t> x,
                        std::vector<int32_t> y);
  // The same over bytes the caller's `owner` keeps alive and unchanged (a
  // read-only mapping of a file, ReadIdxBytes): nothing is copied, and
  // copies of the dataset share them.
  static Dataset FromU8(ExampleShape shape, int num_classes, std::shared_ptr<const void> owner,
                        std::span<const uint8_t> x, std::vector<int32_t> y);
  // Features stored as float32 and returned as they are.
  static Dataset FromF32(ExampleShape shape, int num_classes, std::vector<float> x,
                         std::vector<int32_t> y);

  size_t size() const { return labels_.size(); }
  int dim() const { return shape_.dim(); }
  const ExampleShape& shape() const { return shape_; }
  int num_classes() const { return num_classes_; }
  std::span<const int32_t> labels() const { return labels_; }

  // Writes examples `indices` (in that order) as rows of x (indices.size() x
  // dim floats, row-major) and their labels into y.
  // REQUIRES: every index < size(); x and y large enough.
  void Gather(std::span<const uint32_t> indices, float* x, int32_t* y) const;
  // Rows [begin, end) in order.
  void GatherRange(size_t begin, size_t end, float* x, int32_t* y) const;
  // A dataset of the given rows (copies them).
  Dataset Subset(std::span<const uint32_t> indices) const;
  // How the features are stored (FromF32 or FromU8), and the stored values
  // themselves, row-major (size() x dim()): the other one is empty. For
  // writers that keep the stored form (data/client_folder.h).
  bool is_float() const { return is_float_; }
  std::span<const uint8_t> stored_bytes() const { return x_u8_; }
  std::span<const float> stored_floats() const { return x_f32_; }

 private:
  ExampleShape shape_;
  int num_classes_ = 0;
  // Used when !is_float_: the bytes, immutable, kept alive by u8_owner_.
  std::shared_ptr<const void> u8_owner_;
  std::span<const uint8_t> x_u8_;
  std::vector<float> x_f32_;  // used when is_float_
  bool is_float_ = false;
  std::vector<int32_t> labels_;
};

struct TrainTest {
  Dataset train;
  Dataset test;
};

// The default location of the Debian package dataset-fashion-mnist.
inline constexpr char kDefaultFashionMnistDir[] = "/usr/share/datasets/fashion-mnist";

// The shape of a Fashion-MNIST example: one 28 x 28 grey image. Models for a
// scenario's Fashion-MNIST are built for it before any data is read
// (config/model_config.h), so the loader holds the files to it.
inline constexpr ExampleShape kFashionMnistShape{1, 28, 28};

// Reads train-{images,labels}-idx*-ubyte.gz and t10k-* from `dir` (each name
// without .gz is used when only the uncompressed file is there). Examples are
// kFashionMnistShape uint8 images, 10 classes.
// `*_limit` > 0 keeps only the first that many examples.
// Errors: NotFound naming the path and the package to install; DataLoss (with
// the path) for a truncated/corrupt file, a wrong magic number, dims
// inconsistent with the file size, an image/label count mismatch, a file of
// no images, a label outside [0, 10), train and test images of different
// sizes (naming both files and both sizes), or images other than 28 x 28.
// Thread-safe.
absl::StatusOr<TrainTest> LoadFashionMnist(const std::string& dir, size_t train_limit = 0,
                                           size_t test_limit = 0);

// Reads one gzipped (or plain) IDX file. Exposed for tests and other IDX data.
// Errors: NotFound (no file), InvalidArgument (a directory), DataLoss naming
// the path for corrupt gzip, a short file, a wrong magic number, an element
// type other than 0x08, or dims inconsistent with the data size. Memory grows
// only with bytes actually read, so a corrupt header cannot force a huge
// allocation. A gzipped file over 1 MiB is read through the cache of
// uncompressed copies (data/idx_cache.h). Thread-safe.
struct IdxArray {
  uint8_t type_code = 0;       // 0x08 = unsigned byte (the only type we read)
  std::vector<uint32_t> dims;  // e.g. {60000, 28, 28}
  std::vector<uint8_t> data;
};
absl::StatusOr<IdxArray> ReadIdxFile(const std::string& path);
// ReadIdxFile's result where it lies (data/idx_map.cc): for a gzipped file
// with a copy in the cache, a read-only mapping of the copy, whose pages
// every process that loads the file shares (a server and its workers hold
// Fashion-MNIST once, not once each, and nothing is zero-filled or copied);
// otherwise ReadIdxFile's bytes. `owner` keeps `data` alive. Errors as
// ReadIdxFile's; a copy that does not map as a whole, valid IDX file is
// replaced as ReadIdxFile replaces it.
struct IdxBytes {
  std::vector<uint32_t> dims;
  std::shared_ptr<const void> owner;
  std::span<const uint8_t> data;
};
absl::StatusOr<IdxBytes> ReadIdxBytes(const std::string& path);
// DataLoss naming the files unless `labels` is one-dimensional with one
// label per image of `images` (dims[0] of both, image_dims those of images).
absl::Status CheckIdxLabelsFitImages(const std::vector<uint32_t>& image_dims,
                                     const std::string& images_path, const IdxArray& labels,
                                     const std::string& labels_path);
// Writes a gzipped IDX file of unsigned bytes (for tests and tools).
// InvalidArgument unless 1 <= dims.size() <= 255 and data.size() equals the
// product of dims; Unavailable when the file cannot be written.
absl::Status WriteIdxFile(const std::string& path, const std::vector<uint32_t>& dims,
                          std::span<const uint8_t> data);

// Per-client data: the FedProx/LEAF Synthetic(alpha, beta) generator
// (ALGORITHMS.md section 10) and its IID variant. 60 features, 10 classes.
struct SyntheticOptions {
  // Default: 1.0. Standard deviation of u_k (model heterogeneity).
  double alpha = 1.0;
  // Default: 1.0. Standard deviation of B_k (feature heterogeneity).
  double beta = 1.0;
  // Default: false. Shared W, b ~ N(0,1) and x ~ N(0, Sigma) for all clients.
  bool iid = false;
  // Default: 0 = n_k = int(lognormal(4, 2)) + 50; else every client gets this many
  // (>= 2). lognormal(4, 2) is heavy-tailed and kept as specified: median
  // n_k ~105, mean ~450, about 1 client in 10^4 above 93,000 rows.
  size_t examples_per_client = 0;
  // Default: 60 (d in the paper).
  int num_features = 60;
  // Default: 10.
  int num_classes = 10;
};
struct FederatedData {
  Dataset train;  // all clients' training rows, client after client
  Dataset test;   // all clients' test rows (the 10% splits), the global test set
  std::vector<std::vector<uint32_t>> client_train;  // row indices into train, per client
  std::vector<std::vector<uint32_t>> client_test;   // row indices into test, per client
};
// Client k's rows depend only on (options, k, seed), not on num_clients; its
// first floor(0.9 n_k) rows are its train split, the rest its test split.
// Features are dim x 1 x 1 float vectors. The per-client ground-truth models
// are available from data/synthetic.h.
// Errors: InvalidArgument for num_clients <= 0, alpha/beta negative or not
// finite, num_features <= 0, num_classes < 2, examples_per_client == 1;
// ResourceExhausted when all clients together exceed kMaxSyntheticRows rows
// (2^26; set examples_per_client). Thread-safe.
absl::StatusOr<FederatedData> GenerateSynthetic(const SyntheticOptions& options, int num_clients,
                                                uint64_t seed);

}  // namespace fedsim

#endif  // FEDSIM_DATA_DATASET_H_
