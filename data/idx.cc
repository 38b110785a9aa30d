// IDX files (the MNIST container) through zlib, and the Fashion-MNIST loader.
//
// gzopen/gzread read gzip and plain files alike (zlib's transparent mode), so
// one code path serves both. A corrupt header must never make us allocate what
// its dims claim: data is read in bounded chunks and the buffer only grows with
// bytes that really are in the file.
#include <zlib.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <limits>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "data/dataset.h"
#include "data/idx_cache.h"
#include "util/status_macros.h"

namespace fedsim {
namespace {

constexpr char kInstallHint[] =
    "install the Debian package dataset-fashion-mnist (apt-get install "
    "dataset-fashion-mnist) or pass the folder that holds the files";

// Largest payload we accept from one IDX file (16 GiB): far above any real
// dataset we read, far below where size arithmetic could overflow.
constexpr uint64_t kMaxIdxBytes = uint64_t{1} << 34;
constexpr size_t kChunkBytes = size_t{1} << 20;
// Capacity reserved before reading an IDX body (see ReadIdxFile).
constexpr uint64_t kReserveBytes = uint64_t{256} << 20;

// Closes a gzFile on every return path.
class GzCloser {
 public:
  explicit GzCloser(gzFile f) : f_(f) {}
  GzCloser(const GzCloser&) = delete;
  GzCloser& operator=(const GzCloser&) = delete;
  ~GzCloser() {
    if (f_ != nullptr) gzclose(f_);
  }
  // Closes now and reports whether the close (which flushes on write) worked.
  int Close() {
    int rc = gzclose(f_);
    f_ = nullptr;
    return rc;
  }

 private:
  gzFile f_;
};

// Reads up to n bytes. Returns the number read (< n only at end of file), or a
// DataLoss status when zlib reports a corrupt or truncated stream.
absl::StatusOr<size_t> ReadSome(gzFile f, const std::string& path, uint8_t* out, size_t n) {
  size_t total = 0;
  while (total < n) {
    const unsigned want =
        static_cast<unsigned>(std::min<size_t>(n - total, std::numeric_limits<int>::max() / 2));
    const int got = gzread(f, out + total, want);
    if (got < 0) {
      int errnum = 0;
      const char* msg = gzerror(f, &errnum);
      std::string detail = errnum == Z_ERRNO ? std::strerror(errno) : std::string(msg);
      // zlib prefixes its messages with the path, which we print already.
      if (detail.rfind(path + ": ", 0) == 0) detail = detail.substr(path.size() + 2);
      return absl::DataLossError(
          absl::StrCat(path, ": corrupt or truncated compressed data (", detail, ")"));
    }
    if (got == 0) break;
    total += static_cast<size_t>(got);
  }
  // zlib reports a gzip stream cut short (no trailer) as Z_BUF_ERROR only after
  // the read that hits end of input, which may have returned 0 cleanly.
  if (total < n) {
    int errnum = Z_OK;
    const char* msg = gzerror(f, &errnum);
    if (errnum != Z_OK) {
      std::string detail(msg);
      if (detail.rfind(path + ": ", 0) == 0) detail = detail.substr(path.size() + 2);
      return absl::DataLossError(
          absl::StrCat(path, ": corrupt or truncated compressed data (", detail, ")"));
    }
  }
  return total;
}

absl::Status CheckReadable(const std::string& path) {
  std::error_code ec;
  const auto st = std::filesystem::status(path, ec);
  if (!std::filesystem::exists(st)) {
    return absl::NotFoundError(absl::StrCat(path, ": no such file"));
  }
  if (std::filesystem::is_directory(st)) {
    return absl::InvalidArgumentError(absl::StrCat(path, ": is a directory, not an IDX file"));
  }
  return absl::OkStatus();
}

// ReadIdxFile without the cache.
absl::StatusOr<IdxArray> ReadIdxSource(const std::string& path) {
  gzFile f = gzopen(path.c_str(), "rb");
  if (f == nullptr) {
    const int err = errno;
    if (err == ENOENT) return absl::NotFoundError(absl::StrCat(path, ": no such file"));
    if (err == EACCES) {
      return absl::PermissionDeniedError(absl::StrCat(path, ": permission denied"));
    }
    return absl::UnavailableError(absl::StrCat(path, ": cannot open (", std::strerror(err), ")"));
  }
  GzCloser closer(f);

  uint8_t magic[4];
  FEDSIM_ASSIGN_OR_RETURN(size_t got, ReadSome(f, path, magic, 4));
  if (got < 4) {
    return absl::DataLossError(
        absl::StrCat(path, ": truncated: ", got, " bytes, shorter than the 4-byte IDX header"));
  }
  if (magic[0] != 0 || magic[1] != 0) {
    return absl::DataLossError(absl::StrCat(
        path, ": not an IDX file (wrong magic number: first bytes ", static_cast<int>(magic[0]),
        " ", static_cast<int>(magic[1]), ", expected 0 0)"));
  }
  if (magic[2] != 0x08) {
    return absl::DataLossError(
        absl::StrCat(path, ": unsupported IDX element type 0x", absl::Hex(magic[2]),
                     " in the magic number (only 0x08, unsigned byte, is read)"));
  }
  const int ndims = magic[3];
  if (ndims < 1) {
    return absl::DataLossError(
        absl::StrCat(path, ": wrong magic number: IDX header declares 0 dimensions"));
  }

  IdxArray out;
  out.type_code = magic[2];
  std::vector<uint8_t> dim_bytes(static_cast<size_t>(ndims) * 4);
  FEDSIM_ASSIGN_OR_RETURN(got, ReadSome(f, path, dim_bytes.data(), dim_bytes.size()));
  if (got < dim_bytes.size()) {
    return absl::DataLossError(absl::StrCat(path, ": truncated inside the header (", ndims,
                                            " dimensions declared, file ends after ", 4 + got,
                                            " bytes)"));
  }
  uint64_t expected = 1;
  for (int i = 0; i < ndims; ++i) {
    const uint8_t* b = dim_bytes.data() + 4 * i;
    const uint32_t d =
        (uint32_t{b[0]} << 24) | (uint32_t{b[1]} << 16) | (uint32_t{b[2]} << 8) | uint32_t{b[3]};
    out.dims.push_back(d);
    // Checked before multiplying: each factor < 2^32 and the running product
    // <= 2^34, so the product never overflows 64 bits.
    expected *= d;
    if (expected > kMaxIdxBytes) {
      return absl::DataLossError(absl::StrCat(path, ": dims in the header claim more than ",
                                              kMaxIdxBytes, " bytes; the header is corrupt"));
    }
  }

  // Grow only as data arrives, so a lying header costs at most the real file
  // in memory. The capacity is reserved up to kReserveBytes at once (address
  // space, not memory, until written): growing by doubling copied a 47 MB
  // file about twice over and faulted in every copy.
  out.data.reserve(static_cast<size_t>(std::min<uint64_t>(expected, kReserveBytes)));
  while (out.data.size() < expected) {
    const size_t have = out.data.size();
    const size_t step = static_cast<size_t>(std::min<uint64_t>(expected - have, kChunkBytes));
    out.data.resize(have + step);
    FEDSIM_ASSIGN_OR_RETURN(got, ReadSome(f, path, out.data.data() + have, step));
    if (got < step) {
      return absl::DataLossError(
          absl::StrCat(path, ": truncated or dims inconsistent with file size: header dims need ",
                       expected, " data bytes, file holds ", have + got));
    }
  }
  uint8_t extra;
  FEDSIM_ASSIGN_OR_RETURN(got, ReadSome(f, path, &extra, 1));
  if (got != 0) {
    return absl::DataLossError(
        absl::StrCat(path, ": dims inconsistent with file size: data continues past the ", expected,
                     " bytes the header dims describe"));
  }
  return out;
}

// Where the cache keeps the uncompressed copy of `path`: nullopt for a file
// it does not keep (small, not gzipped, or no cache folder).
std::optional<std::string> CachedCopyOf(const std::string& path) {
  std::error_code ec;
  const uint64_t size = std::filesystem::file_size(path, ec);
  const std::optional<std::string> dir =
      ec || size < kIdxCacheMinSourceBytes || !IsGzipFile(path) ? std::nullopt : IdxCacheDir();
  return dir.has_value() ? IdxCachePath(*dir, path) : std::nullopt;
}

}  // namespace

absl::StatusOr<IdxArray> ReadIdxFile(const std::string& path) {
  FEDSIM_RETURN_IF_ERROR(CheckReadable(path));
  std::error_code ec;
  const std::optional<std::string> copy = CachedCopyOf(path);
  if (!copy.has_value()) return ReadIdxSource(path);
  if (std::filesystem::exists(*copy, ec)) {
    absl::StatusOr<IdxArray> cached = ReadIdxSource(*copy);
    if (cached.ok()) return cached;
    std::filesystem::remove(*copy, ec);  // damaged: replaced below
  }
  absl::StatusOr<IdxArray> out = ReadIdxSource(path);
  if (out.ok()) WriteIdxCacheFile(*copy, *out);
  return out;
}

absl::StatusOr<IdxBytes> ReadIdxBytes(const std::string& path) {
  FEDSIM_RETURN_IF_ERROR(CheckReadable(path));
  const std::optional<std::string> copy = CachedCopyOf(path);
  if (copy.has_value()) {
    if (std::optional<IdxBytes> mapped = MapIdxCacheFile(*copy)) return *std::move(mapped);
  }
  // No copy yet, or a damaged one: ReadIdxFile reads the source and (re)writes
  // the copy, which is then mapped so that its pages are shared too.
  FEDSIM_ASSIGN_OR_RETURN(IdxArray read, ReadIdxFile(path));
  if (copy.has_value()) {
    if (std::optional<IdxBytes> mapped = MapIdxCacheFile(*copy)) return *std::move(mapped);
  }
  IdxBytes out;
  out.dims = std::move(read.dims);
  auto owned = std::make_shared<const std::vector<uint8_t>>(std::move(read.data));
  out.data = std::span<const uint8_t>(*owned);
  out.owner = std::move(owned);
  return out;
}

absl::Status WriteIdxFile(const std::string& path, const std::vector<uint32_t>& dims,
                          std::span<const uint8_t> data) {
  if (dims.empty() || dims.size() > 255) {
    return absl::InvalidArgumentError(
        absl::StrCat(path, ": an IDX file needs 1 to 255 dimensions, got ", dims.size()));
  }
  uint64_t expected = 1;
  for (uint32_t d : dims) {
    expected *= d;
    if (expected > kMaxIdxBytes) {
      return absl::InvalidArgumentError(absl::StrCat(path, ": dims too large"));
    }
  }
  if (expected != data.size()) {
    return absl::InvalidArgumentError(
        absl::StrCat(path, ": dims describe ", expected, " bytes but data has ", data.size()));
  }
  gzFile f = gzopen(path.c_str(), "wb");
  if (f == nullptr) {
    return absl::UnavailableError(
        absl::StrCat(path, ": cannot open for writing (", std::strerror(errno), ")"));
  }
  GzCloser closer(f);
  std::vector<uint8_t> header = {0, 0, 0x08, static_cast<uint8_t>(dims.size())};
  for (uint32_t d : dims) {
    header.push_back(static_cast<uint8_t>(d >> 24));
    header.push_back(static_cast<uint8_t>(d >> 16));
    header.push_back(static_cast<uint8_t>(d >> 8));
    header.push_back(static_cast<uint8_t>(d));
  }
  auto write_all = [&](const uint8_t* p, size_t n) -> bool {
    while (n > 0) {
      const unsigned step = static_cast<unsigned>(std::min<size_t>(n, kChunkBytes));
      if (gzwrite(f, p, step) != static_cast<int>(step)) return false;
      p += step;
      n -= step;
    }
    return true;
  };
  if (!write_all(header.data(), header.size()) || !write_all(data.data(), data.size())) {
    int errnum = 0;
    return absl::UnavailableError(
        absl::StrCat(path, ": write failed (", std::string(gzerror(f, &errnum)), ")"));
  }
  if (closer.Close() != Z_OK) {
    return absl::UnavailableError(absl::StrCat(path, ": write failed on close"));
  }
  return absl::OkStatus();
}

absl::Status CheckIdxLabelsFitImages(const std::vector<uint32_t>& image_dims,
                                     const std::string& images_path, const IdxArray& labels,
                                     const std::string& labels_path) {
  if (labels.dims.size() != 1) {
    return absl::DataLossError(
        absl::StrCat(labels_path, ": expected 1 dim (count), got ", labels.dims.size()));
  }
  if (image_dims[0] != labels.dims[0]) {
    return absl::DataLossError(absl::StrCat("image/label count mismatch: ", images_path, " holds ",
                                            image_dims[0], " images but ", labels_path, " holds ",
                                            labels.dims[0], " labels"));
  }
  return absl::OkStatus();
}

namespace {

// Resolves `dir/name.gz`, falling back to an uncompressed `dir/name`.
absl::StatusOr<std::string> FindIdx(const std::string& dir, const std::string& name) {
  const std::filesystem::path base(dir);
  const std::string gz = (base / (name + ".gz")).string();
  std::error_code ec;
  if (std::filesystem::exists(gz, ec)) return gz;
  const std::string plain = (base / name).string();
  if (std::filesystem::exists(plain, ec)) return plain;
  if (!std::filesystem::is_directory(dir, ec)) {
    return absl::NotFoundError(absl::StrCat(
        "Fashion-MNIST folder ", dir, " does not exist (looked for ", gz, "); ", kInstallHint));
  }
  return absl::NotFoundError(absl::StrCat("Fashion-MNIST file ", gz, " not found; ", kInstallHint));
}

// One split as loaded, with the path of its images for messages.
struct Split {
  Dataset data;
  std::string images_path;
};

std::string ShapeText(const ExampleShape& s) { return absl::StrCat(s.height, "x", s.width); }

absl::StatusOr<Split> LoadSplit(const std::string& dir, const std::string& prefix, size_t limit) {
  constexpr int kNumClasses = 10;
  FEDSIM_ASSIGN_OR_RETURN(std::string images_path, FindIdx(dir, prefix + "-images-idx3-ubyte"));
  FEDSIM_ASSIGN_OR_RETURN(std::string labels_path, FindIdx(dir, prefix + "-labels-idx1-ubyte"));
  FEDSIM_ASSIGN_OR_RETURN(IdxBytes images, ReadIdxBytes(images_path));
  FEDSIM_ASSIGN_OR_RETURN(IdxArray labels, ReadIdxFile(labels_path));
  if (images.dims.size() != 3) {
    return absl::DataLossError(absl::StrCat(
        images_path, ": expected 3 dims (count, rows, cols), got ", images.dims.size()));
  }
  // Bounded so that the int fields of ExampleShape cannot overflow.
  constexpr uint32_t kMaxSide = 1 << 14;
  if (images.dims[1] == 0 || images.dims[2] == 0 || images.dims[1] > kMaxSide ||
      images.dims[2] > kMaxSide) {
    return absl::DataLossError(absl::StrCat(images_path, ": image size ", images.dims[1], "x",
                                            images.dims[2], " is not plausible (each side in [1, ",
                                            kMaxSide, "])"));
  }
  FEDSIM_RETURN_IF_ERROR(CheckIdxLabelsFitImages(images.dims, images_path, labels, labels_path));
  if (images.dims[0] == 0) {
    return absl::DataLossError(absl::StrCat(
        images_path, ": holds no images (its header says 0); is the download complete?"));
  }
  size_t n = images.dims[0];
  if (limit > 0 && limit < n) n = limit;
  std::vector<int32_t> y(n);
  for (size_t i = 0; i < n; ++i) {
    if (labels.data[i] >= kNumClasses) {
      return absl::DataLossError(absl::StrCat(labels_path, ": label ",
                                              static_cast<int>(labels.data[i]), " at index ", i,
                                              " is out of range [0, ", kNumClasses, ")"));
    }
    y[i] = labels.data[i];
  }
  ExampleShape shape{1, static_cast<int>(images.dims[1]), static_cast<int>(images.dims[2])};
  // A limit keeps the first n images, of the same bytes.
  return Split{
      Dataset::FromU8(shape, kNumClasses, std::move(images.owner),
                      images.data.first(n * static_cast<size_t>(shape.dim())), std::move(y)),
      std::move(images_path)};
}

}  // namespace

absl::StatusOr<TrainTest> LoadFashionMnist(const std::string& dir, size_t train_limit,
                                           size_t test_limit) {
  FEDSIM_ASSIGN_OR_RETURN(Split train, LoadSplit(dir, "train", train_limit));
  FEDSIM_ASSIGN_OR_RETURN(Split test, LoadSplit(dir, "t10k", test_limit));
  // A model is built for one input size; a test image of another size would
  // be read past its end (or cut short) by every evaluation.
  const ExampleShape& a = train.data.shape();
  const ExampleShape& b = test.data.shape();
  if (a.height != b.height || a.width != b.width) {
    return absl::DataLossError(absl::StrCat(
        "Fashion-MNIST train and test images differ in size: ", train.images_path, " holds ",
        ShapeText(a), " images, ", test.images_path, " holds ", ShapeText(b), "; both must be ",
        ShapeText(kFashionMnistShape), " (is one of them from another dataset?)"));
  }
  if (a.height != kFashionMnistShape.height || a.width != kFashionMnistShape.width) {
    return absl::DataLossError(
        absl::StrCat(train.images_path, " and ", test.images_path, " hold ", ShapeText(a),
                     " images, but Fashion-MNIST's are ", ShapeText(kFashionMnistShape),
                     " and the models are built for that size; is this the right folder?"));
  }
  return TrainTest{std::move(train.data), std::move(test.data)};
}

}  // namespace fedsim
