#include <unistd.h>
#include <zlib.h>

#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "data/dataset.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace fedsim {
namespace {

using ::testing::HasSubstr;

// A fresh folder per test, removed afterwards.
class IdxTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    dir_ = std::filesystem::path(::testing::TempDir()) /
           (std::string("fedsim_idx_") + info->name() + "_" + std::to_string(getpid()));
    std::filesystem::remove_all(dir_);
    std::filesystem::create_directories(dir_);
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  std::string Path(const std::string& name) const { return (dir_ / name).string(); }

  static void WriteRaw(const std::string& path, const std::vector<uint8_t>& bytes) {
    std::ofstream f(path, std::ios::binary);
    f.write(reinterpret_cast<const char*>(bytes.data()), bytes.size());
  }
  static std::vector<uint8_t> ReadRaw(const std::string& path) {
    std::ifstream f(path, std::ios::binary);
    return std::vector<uint8_t>(std::istreambuf_iterator<char>(f), {});
  }
  static void WriteGz(const std::string& path, const std::vector<uint8_t>& bytes) {
    gzFile f = gzopen(path.c_str(), "wb");
    ASSERT_NE(f, nullptr);
    ASSERT_EQ(gzwrite(f, bytes.data(), bytes.size()), static_cast<int>(bytes.size()));
    gzclose(f);
  }
  static std::vector<uint8_t> Header(uint8_t type, std::vector<uint32_t> dims) {
    std::vector<uint8_t> h = {0, 0, type, static_cast<uint8_t>(dims.size())};
    for (uint32_t d : dims) {
      for (int s = 24; s >= 0; s -= 8) h.push_back(static_cast<uint8_t>(d >> s));
    }
    return h;
  }

  // n images of rows x cols as the split `prefix` ("train" or "t10k").
  void MakeFakeSplit(const std::string& prefix, uint32_t n, uint32_t rows = 28,
                     uint32_t cols = 28) {
    std::vector<uint8_t> px(size_t{n} * rows * cols), y(n);
    for (size_t i = 0; i < px.size(); ++i) px[i] = static_cast<uint8_t>(i % 251);
    for (uint32_t i = 0; i < n; ++i) y[i] = static_cast<uint8_t>(i % 10);
    ASSERT_TRUE(WriteIdxFile(Path(prefix + "-images-idx3-ubyte.gz"), {n, rows, cols}, px).ok());
    ASSERT_TRUE(WriteIdxFile(Path(prefix + "-labels-idx1-ubyte.gz"), {n}, y).ok());
  }
  // A tiny Fashion-MNIST lookalike: n_train / n_test images of 28x28.
  void MakeFakeMnist(uint32_t n_train, uint32_t n_test) {
    MakeFakeSplit("train", n_train);
    MakeFakeSplit("t10k", n_test);
  }

  std::filesystem::path dir_;
};

TEST_F(IdxTest, RoundTrip) {
  std::vector<uint8_t> data(2 * 3 * 5);
  for (size_t i = 0; i < data.size(); ++i) data[i] = static_cast<uint8_t>(i * 7);
  const std::string path = Path("a.gz");
  ASSERT_TRUE(WriteIdxFile(path, {2, 3, 5}, data).ok());
  // It really is gzip.
  std::vector<uint8_t> raw = ReadRaw(path);
  ASSERT_GE(raw.size(), 2u);
  EXPECT_EQ(raw[0], 0x1f);
  EXPECT_EQ(raw[1], 0x8b);
  absl::StatusOr<IdxArray> a = ReadIdxFile(path);
  ASSERT_TRUE(a.ok()) << a.status();
  EXPECT_EQ(a->type_code, 0x08);
  EXPECT_EQ(a->dims, (std::vector<uint32_t>{2, 3, 5}));
  EXPECT_EQ(a->data, data);
}

TEST_F(IdxTest, ReadsPlainUncompressedFiles) {
  std::vector<uint8_t> bytes = Header(0x08, {3});
  bytes.insert(bytes.end(), {9, 8, 7});
  WriteRaw(Path("plain"), bytes);
  absl::StatusOr<IdxArray> a = ReadIdxFile(Path("plain"));
  ASSERT_TRUE(a.ok()) << a.status();
  EXPECT_EQ(a->dims, std::vector<uint32_t>{3});
  EXPECT_EQ(a->data, (std::vector<uint8_t>{9, 8, 7}));
}

TEST_F(IdxTest, WriteRejectsDataSizeMismatch) {
  std::vector<uint8_t> data(5);
  absl::Status s = WriteIdxFile(Path("x.gz"), {2, 3}, data);
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(WriteIdxFile(Path("y.gz"), {}, data).code(), absl::StatusCode::kInvalidArgument);
}

TEST_F(IdxTest, MissingFileIsNotFound) {
  absl::StatusOr<IdxArray> a = ReadIdxFile(Path("nope.gz"));
  EXPECT_EQ(a.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(a.status().message(), HasSubstr(Path("nope.gz")));
}

TEST_F(IdxTest, TruncatedGzipIsDataLoss) {
  std::vector<uint8_t> data(4000);
  for (size_t i = 0; i < data.size(); ++i) data[i] = static_cast<uint8_t>((i * 131) ^ (i >> 3));
  ASSERT_TRUE(WriteIdxFile(Path("full.gz"), {4000}, data).ok());
  std::vector<uint8_t> raw = ReadRaw(Path("full.gz"));
  for (size_t keep : {raw.size() - 4, raw.size() / 2, size_t{12}}) {
    WriteRaw(Path("cut.gz"), std::vector<uint8_t>(raw.begin(), raw.begin() + keep));
    absl::StatusOr<IdxArray> a = ReadIdxFile(Path("cut.gz"));
    EXPECT_EQ(a.status().code(), absl::StatusCode::kDataLoss) << keep << ": " << a.status();
    EXPECT_THAT(a.status().message(), HasSubstr(Path("cut.gz")));
  }
}

TEST_F(IdxTest, CorruptGzipBodyIsDataLoss) {
  std::vector<uint8_t> data(4000, 3);
  ASSERT_TRUE(WriteIdxFile(Path("full.gz"), {4000}, data).ok());
  std::vector<uint8_t> raw = ReadRaw(Path("full.gz"));
  for (size_t i = 10; i < raw.size() - 8; ++i) raw[i] ^= 0x5a;
  WriteRaw(Path("bad.gz"), raw);
  absl::StatusOr<IdxArray> a = ReadIdxFile(Path("bad.gz"));
  EXPECT_EQ(a.status().code(), absl::StatusCode::kDataLoss) << a.status();
  EXPECT_THAT(a.status().message(), HasSubstr(Path("bad.gz")));
}

TEST_F(IdxTest, TruncatedPlainFileIsDataLoss) {
  std::vector<uint8_t> bytes = Header(0x08, {10, 10});
  bytes.resize(bytes.size() + 50);
  WriteGz(Path("short.gz"), bytes);
  absl::StatusOr<IdxArray> a = ReadIdxFile(Path("short.gz"));
  EXPECT_EQ(a.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(a.status().message(), HasSubstr("100"));
  EXPECT_THAT(a.status().message(), HasSubstr("50"));
  // Cut inside the header.
  WriteGz(Path("hdr.gz"), {0, 0, 8, 3, 0, 0});
  a = ReadIdxFile(Path("hdr.gz"));
  EXPECT_EQ(a.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(a.status().message(), HasSubstr("header"));
  WriteRaw(Path("empty"), {});
  EXPECT_EQ(ReadIdxFile(Path("empty")).status().code(), absl::StatusCode::kDataLoss);
}

TEST_F(IdxTest, WrongMagicIsDataLoss) {
  std::vector<uint8_t> bytes = Header(0x08, {2});
  bytes.insert(bytes.end(), {1, 2});
  bytes[0] = 0x12;
  WriteGz(Path("magic.gz"), bytes);
  absl::StatusOr<IdxArray> a = ReadIdxFile(Path("magic.gz"));
  EXPECT_EQ(a.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(a.status().message(), HasSubstr("magic"));
  // Right prefix, unsupported element type (0x0D = float).
  bytes = Header(0x0D, {2});
  bytes.resize(bytes.size() + 8);
  WriteGz(Path("float.gz"), bytes);
  a = ReadIdxFile(Path("float.gz"));
  EXPECT_EQ(a.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(a.status().message(), HasSubstr("type"));
}

TEST_F(IdxTest, GarbageNonGzipBytesAreRejected) {
  std::vector<uint8_t> junk(300);
  for (size_t i = 0; i < junk.size(); ++i) junk[i] = static_cast<uint8_t>(i * 37 + 11);
  WriteRaw(Path("junk.gz"), junk);
  absl::StatusOr<IdxArray> a = ReadIdxFile(Path("junk.gz"));
  EXPECT_EQ(a.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(a.status().message(), HasSubstr(Path("junk.gz")));
  // Text, as from an HTML error page saved under the file's name.
  std::string html = "<html><body>404 Not Found</body></html>";
  WriteRaw(Path("page.gz"), std::vector<uint8_t>(html.begin(), html.end()));
  EXPECT_EQ(ReadIdxFile(Path("page.gz")).status().code(), absl::StatusCode::kDataLoss);
}

TEST_F(IdxTest, HugeDimsDoNotAllocate) {
  // Claims 2^32-1 x 2^32-1 x 28 bytes; must fail fast, not allocate.
  std::vector<uint8_t> bytes = Header(0x08, {0xffffffffu, 0xffffffffu, 28});
  bytes.resize(bytes.size() + 100);
  WriteGz(Path("huge.gz"), bytes);
  absl::StatusOr<IdxArray> a = ReadIdxFile(Path("huge.gz"));
  EXPECT_EQ(a.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(a.status().message(), HasSubstr("corrupt"));
  // Plausible-looking but larger than the file: 1 GiB claimed, 100 bytes held.
  bytes = Header(0x08, {1u << 30});
  bytes.resize(bytes.size() + 100);
  WriteGz(Path("big.gz"), bytes);
  a = ReadIdxFile(Path("big.gz"));
  EXPECT_EQ(a.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(a.status().message(), HasSubstr("inconsistent with file size"));
}

TEST_F(IdxTest, DimsInconsistentWithSizeIsDataLoss) {
  // Data continues past what the dims describe.
  std::vector<uint8_t> bytes = Header(0x08, {2, 2});
  bytes.resize(bytes.size() + 6);
  WriteGz(Path("long.gz"), bytes);
  absl::StatusOr<IdxArray> a = ReadIdxFile(Path("long.gz"));
  EXPECT_EQ(a.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(a.status().message(), HasSubstr("inconsistent with file size"));
}

TEST_F(IdxTest, LoadFashionMnistFromFakeFolder) {
  MakeFakeMnist(30, 12);
  absl::StatusOr<TrainTest> tt = LoadFashionMnist(dir_.string());
  ASSERT_TRUE(tt.ok()) << tt.status();
  EXPECT_EQ(tt->train.size(), 30u);
  EXPECT_EQ(tt->test.size(), 12u);
  EXPECT_EQ(tt->train.shape().height, 28);
  EXPECT_EQ(tt->train.shape().width, 28);
  EXPECT_EQ(tt->train.dim(), 784);
  EXPECT_EQ(tt->train.num_classes(), 10);
  EXPECT_EQ(tt->train.labels()[13], 3);
  float x[784];
  int32_t y;
  std::vector<uint32_t> idx = {1};
  tt->train.Gather(idx, x, &y);
  EXPECT_FLOAT_EQ(x[0], (784 % 251) / 255.0f);
  EXPECT_EQ(y, 1);

  tt = LoadFashionMnist(dir_.string(), 7, 5);
  ASSERT_TRUE(tt.ok()) << tt.status();
  EXPECT_EQ(tt->train.size(), 7u);
  EXPECT_EQ(tt->test.size(), 5u);
  // A limit above the count keeps everything.
  tt = LoadFashionMnist(dir_.string(), 1000, 0);
  ASSERT_TRUE(tt.ok());
  EXPECT_EQ(tt->train.size(), 30u);
}

TEST_F(IdxTest, LoadFashionMnistMissingFileNamesPathAndPackage) {
  MakeFakeMnist(5, 5);
  std::filesystem::remove(Path("t10k-labels-idx1-ubyte.gz"));
  absl::StatusOr<TrainTest> tt = LoadFashionMnist(dir_.string());
  EXPECT_EQ(tt.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(tt.status().message(), HasSubstr(Path("t10k-labels-idx1-ubyte.gz")));
  EXPECT_THAT(tt.status().message(), HasSubstr("apt-get install dataset-fashion-mnist"));
  EXPECT_THAT(tt.status().message(), HasSubstr("pass the folder"));

  tt = LoadFashionMnist(Path("no_such_folder"));
  EXPECT_EQ(tt.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(tt.status().message(), HasSubstr(Path("no_such_folder")));
  EXPECT_THAT(tt.status().message(), HasSubstr("dataset-fashion-mnist"));
}

TEST_F(IdxTest, LoadFashionMnistImageLabelCountMismatch) {
  MakeFakeMnist(10, 10);
  std::vector<uint8_t> y(9, 1);
  ASSERT_TRUE(WriteIdxFile(Path("train-labels-idx1-ubyte.gz"), {9}, y).ok());
  absl::StatusOr<TrainTest> tt = LoadFashionMnist(dir_.string());
  EXPECT_EQ(tt.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(tt.status().message(), HasSubstr("count mismatch"));
  EXPECT_THAT(tt.status().message(), HasSubstr("10 images"));
  EXPECT_THAT(tt.status().message(), HasSubstr("9 labels"));
}

TEST_F(IdxTest, LoadFashionMnistLabelOutOfRange) {
  MakeFakeMnist(10, 10);
  std::vector<uint8_t> y(10, 1);
  y[6] = 10;
  ASSERT_TRUE(WriteIdxFile(Path("t10k-labels-idx1-ubyte.gz"), {10}, y).ok());
  absl::StatusOr<TrainTest> tt = LoadFashionMnist(dir_.string());
  EXPECT_EQ(tt.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(tt.status().message(), HasSubstr("label 10 at index 6"));
  EXPECT_THAT(tt.status().message(), HasSubstr(Path("t10k-labels-idx1-ubyte.gz")));
}

TEST_F(IdxTest, LoadFashionMnistWrongRank) {
  MakeFakeMnist(10, 10);
  std::vector<uint8_t> px(10 * 784);
  ASSERT_TRUE(WriteIdxFile(Path("train-images-idx3-ubyte.gz"), {10, 784}, px).ok());
  absl::StatusOr<TrainTest> tt = LoadFashionMnist(dir_.string());
  EXPECT_EQ(tt.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(tt.status().message(), HasSubstr("expected 3 dims"));
}

// Regression: 32x32 training images with 28x28 test images loaded, and the
// evaluator read past the end of every test image (or crashed in the dense
// forward pass). The sizes are checked when the files are loaded.
TEST_F(IdxTest, LoadFashionMnistTrainAndTestOfDifferentSizes) {
  MakeFakeSplit("train", 10, 32, 32);
  MakeFakeSplit("t10k", 10);
  absl::StatusOr<TrainTest> tt = LoadFashionMnist(dir_.string());
  EXPECT_EQ(tt.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_EQ(
      tt.status().message(),
      "Fashion-MNIST train and test images differ in size: " + Path("train-images-idx3-ubyte.gz") +
          " holds 32x32 images, " + Path("t10k-images-idx3-ubyte.gz") +
          " holds 28x28; both must be 28x28 (is one of them from another dataset?)");
  // The other way round, and with a side alone differing.
  MakeFakeSplit("train", 10);
  MakeFakeSplit("t10k", 10, 28, 27);
  tt = LoadFashionMnist(dir_.string());
  EXPECT_EQ(tt.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(std::string(tt.status().message()), HasSubstr("holds 28x27"));
}

// Train and test agree, but not with the 28x28 every scenario's model is
// built for before the data is read.
TEST_F(IdxTest, LoadFashionMnistOtherThan28x28) {
  MakeFakeSplit("train", 10, 32, 32);
  MakeFakeSplit("t10k", 5, 32, 32);
  absl::StatusOr<TrainTest> tt = LoadFashionMnist(dir_.string());
  EXPECT_EQ(tt.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_EQ(tt.status().message(),
            Path("train-images-idx3-ubyte.gz") + " and " + Path("t10k-images-idx3-ubyte.gz") +
                " hold 32x32 images, but Fashion-MNIST's are 28x28 and the models are built "
                "for that size; is this the right folder?");
}

TEST_F(IdxTest, LoadFashionMnistZeroImagesOrZeroSides) {
  MakeFakeMnist(10, 10);
  MakeFakeSplit("t10k", 0);
  absl::StatusOr<TrainTest> tt = LoadFashionMnist(dir_.string());
  EXPECT_EQ(tt.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(std::string(tt.status().message()),
              HasSubstr(Path("t10k-images-idx3-ubyte.gz") + ": holds no images"));
  MakeFakeSplit("t10k", 10);
  ASSERT_TRUE(WriteIdxFile(Path("train-images-idx3-ubyte.gz"), {10, 0, 28}, {}).ok());
  tt = LoadFashionMnist(dir_.string());
  EXPECT_EQ(tt.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(std::string(tt.status().message()), HasSubstr("image size 0x28 is not plausible"));
}

// A header that claims more images than the file holds, cut anywhere.
TEST_F(IdxTest, LoadFashionMnistTruncatedImagesFile) {
  MakeFakeMnist(10, 10);
  std::vector<uint8_t> bytes = Header(0x08, {10, 28, 28});
  bytes.resize(bytes.size() + 9 * 784 + 100);  // 9 images and a bit
  WriteGz(Path("train-images-idx3-ubyte.gz"), bytes);
  absl::StatusOr<TrainTest> tt = LoadFashionMnist(dir_.string());
  EXPECT_EQ(tt.status().code(), absl::StatusCode::kDataLoss);
  EXPECT_THAT(std::string(tt.status().message()),
              HasSubstr(Path("train-images-idx3-ubyte.gz") +
                        ": truncated or dims inconsistent with file size: header dims need 7840 "
                        "data bytes, file holds 7156"));
}

TEST_F(IdxTest, LoadFashionMnistFallsBackToUncompressedNames) {
  MakeFakeMnist(6, 4);
  for (const char* name : {"train-images-idx3-ubyte", "train-labels-idx1-ubyte",
                           "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"}) {
    absl::StatusOr<IdxArray> a = ReadIdxFile(Path(std::string(name) + ".gz"));
    ASSERT_TRUE(a.ok());
    std::vector<uint8_t> bytes = Header(0x08, a->dims);
    bytes.insert(bytes.end(), a->data.begin(), a->data.end());
    WriteRaw(Path(name), bytes);
    std::filesystem::remove(Path(std::string(name) + ".gz"));
  }
  absl::StatusOr<TrainTest> tt = LoadFashionMnist(dir_.string());
  ASSERT_TRUE(tt.ok()) << tt.status();
  EXPECT_EQ(tt->train.size(), 6u);
  EXPECT_EQ(tt->test.size(), 4u);
}

TEST(FashionMnistRealTest, LoadsTheInstalledPackage) {
  if (!std::filesystem::is_directory(kDefaultFashionMnistDir)) {
    GTEST_SKIP() << kDefaultFashionMnistDir << " is absent (package dataset-fashion-mnist)";
  }
  absl::StatusOr<TrainTest> tt = LoadFashionMnist(kDefaultFashionMnistDir);
  ASSERT_TRUE(tt.ok()) << tt.status();
  EXPECT_EQ(tt->train.size(), 60000u);
  EXPECT_EQ(tt->test.size(), 10000u);
  for (const Dataset* d : {&tt->train, &tt->test}) {
    EXPECT_EQ(d->shape().channels, 1);
    EXPECT_EQ(d->shape().height, 28);
    EXPECT_EQ(d->shape().width, 28);
    EXPECT_EQ(d->num_classes(), 10);
    std::vector<size_t> counts(10, 0);
    for (int32_t y : d->labels()) {
      ASSERT_GE(y, 0);
      ASSERT_LT(y, 10);
      ++counts[y];
    }
    // Fashion-MNIST is balanced: 6000 / 1000 per class.
    for (size_t c : counts) EXPECT_EQ(c, d->size() / 10);
  }
  float x[784];
  int32_t y;
  tt->train.GatherRange(0, 1, x, &y);
  float mx = 0.f;
  for (float v : x) {
    EXPECT_GE(v, 0.f);
    EXPECT_LE(v, 1.f);
    mx = std::max(mx, v);
  }
  EXPECT_GT(mx, 0.5f);
}

}  // namespace
}  // namespace fedsim
