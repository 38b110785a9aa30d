#include "data/client_folder.h"

#include <unistd.h>

#include <cstdint>
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

namespace fs = std::filesystem;
using ::testing::HasSubstr;

constexpr ClientDataSpec kImages{{1, 2, 3}, 4};  // 2x3 images, 4 classes
constexpr ClientDataSpec kTable{{3, 1, 1}, 2};   // 3 features, 2 classes

class ClientFolderTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    root_ = fs::path(::testing::TempDir()) /
            (std::string("fedsim_cf_") + info->name() + "_" + std::to_string(getpid()));
    fs::remove_all(root_);
    fs::create_directories(root_);
  }
  void TearDown() override { fs::remove_all(root_); }

  std::string Dir(const std::string& name) const { return (root_ / name).string(); }

  static void Write(const fs::path& path, const std::string& text) {
    std::ofstream(path, std::ios::binary) << text;
  }

  static Dataset Images(int n, int offset) {
    std::vector<uint8_t> x(static_cast<size_t>(n) * 6);
    for (size_t i = 0; i < x.size(); ++i) x[i] = static_cast<uint8_t>((i * 37 + offset) % 256);
    std::vector<int32_t> y(n);
    for (int i = 0; i < n; ++i) y[i] = (i + offset) % 4;
    return Dataset::FromU8(kImages.shape, 4, std::move(x), std::move(y));
  }

  fs::path root_;
};

void ExpectSame(const Dataset& a, const Dataset& b) {
  ASSERT_EQ(a.size(), b.size());
  ASSERT_EQ(a.dim(), b.dim());
  EXPECT_EQ(a.is_float(), b.is_float());
  std::vector<float> xa(a.size() * a.dim()), xb(b.size() * b.dim());
  std::vector<int32_t> ya(a.size()), yb(b.size());
  a.GatherRange(0, a.size(), xa.data(), ya.data());
  b.GatherRange(0, b.size(), xb.data(), yb.data());
  EXPECT_EQ(xa, xb);
  EXPECT_EQ(ya, yb);
}

TEST_F(ClientFolderTest, ImagesRoundTripThroughIdxFiles) {
  const Dataset train = Images(5, 0), test = Images(3, 1);
  ASSERT_TRUE(WriteClientFolder(Dir("hospital-a"), train, &test).ok());
  EXPECT_TRUE(fs::exists(root_ / "hospital-a" / "train-images-idx3-ubyte.gz"));
  // A trailing slash names the same client.
  absl::StatusOr<ClientFolder> f = LoadClientFolder(Dir("hospital-a") + "/", kImages);
  ASSERT_TRUE(f.ok()) << f.status();
  EXPECT_EQ(f->name, "hospital-a");
  EXPECT_FALSE(f->tabular);
  ExpectSame(f->train, train);
  ASSERT_TRUE(f->test.has_value());
  ExpectSame(*f->test, test);
}

TEST_F(ClientFolderTest, FeaturesRoundTripThroughCsvBitForBit) {
  std::vector<float> x = {0.1f, -1.5e-7f, 3.0f, 1.0f / 3.0f, 2.5e30f, -0.0f};
  const Dataset train = Dataset::FromF32(kTable.shape, 2, x, {1, 0});
  ASSERT_TRUE(WriteClientFolder(Dir("lab"), train, nullptr).ok());
  absl::StatusOr<ClientFolder> f = LoadClientFolder(Dir("lab"), kTable);
  ASSERT_TRUE(f.ok()) << f.status();
  EXPECT_TRUE(f->tabular);
  EXPECT_FALSE(f->test.has_value());
  ExpectSame(f->train, train);
}

TEST_F(ClientFolderTest, CsvTakesTheLabelColumnWhereverItIs) {
  fs::create_directories(root_ / "c");
  Write(root_ / "c" / "train.csv", "# from the lab\nlabel,a,b,c\n1,0.5,2,3\n0,1,1,1\n");
  Write(root_ / "c" / "test.csv", "label,a,b,c\n1,7,8,9\n");
  absl::StatusOr<ClientFolder> f = LoadClientFolder(Dir("c"), kTable);
  ASSERT_TRUE(f.ok()) << f.status();
  ASSERT_EQ(f->train.size(), 2u);
  std::vector<float> x(6);
  std::vector<int32_t> y(2);
  f->train.GatherRange(0, 2, x.data(), y.data());
  EXPECT_EQ(x, (std::vector<float>{0.5f, 2, 3, 1, 1, 1}));
  EXPECT_EQ(y, (std::vector<int32_t>{1, 0}));
  EXPECT_EQ(f->test->size(), 1u);
}

TEST_F(ClientFolderTest, RefusesDataThatDoesNotFitTheModel) {
  const Dataset train = Images(4, 0);
  ASSERT_TRUE(WriteClientFolder(Dir("a"), train, nullptr).ok());
  absl::Status s = LoadClientFolder(Dir("a"), {{1, 28, 28}, 4}).status();
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(s.message(), HasSubstr("holds 1x2x3 images, but the run's model takes 1x28x28"));
  s = LoadClientFolder(Dir("a"), {{1, 2, 3}, 3}).status();  // label 3 is not a class
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(s.message(), HasSubstr("label 3 at index 3 is not a class of the run's model"));

  fs::create_directories(root_ / "t");
  Write(root_ / "t" / "train.csv", "a,b,label\n1,2,0\n");
  s = LoadClientFolder(Dir("t"), kTable).status();
  EXPECT_THAT(s.message(), HasSubstr("names 2 feature columns besides 'label', but the run's "
                                     "model takes 3"));
  Write(root_ / "t" / "train.csv", "a,b,c,label\n1,2,3,0\n1,x,3,1\n4,5,6,2\n");
  s = LoadClientFolder(Dir("t"), kTable).status();
  EXPECT_THAT(s.message(), HasSubstr("train.csv:3: b 'x' is not a finite number"));
  Write(root_ / "t" / "train.csv", "a,b,c,label\n1,2,3,0\n4,5,6,2\n");
  s = LoadClientFolder(Dir("t"), kTable).status();
  EXPECT_THAT(s.message(), HasSubstr("train.csv:3: label 2 is not a class"));
  Write(root_ / "t" / "train.csv", "a,b,c,d\n1,2,3,0\n");
  s = LoadClientFolder(Dir("t"), kTable).status();
  EXPECT_THAT(s.message(), HasSubstr("has no column named 'label'"));
  Write(root_ / "t" / "train.csv", "a,b,c,label\n1,2,3,0\n");
  Write(root_ / "t" / "test.csv", "b,a,c,label\n1,2,3,0\n");
  s = LoadClientFolder(Dir("t"), kTable).status();
  EXPECT_THAT(s.message(), HasSubstr("differs from"));
}

TEST_F(ClientFolderTest, SaysWhatIsMissing) {
  absl::Status s = LoadClientFolder(Dir("nope"), kImages).status();
  EXPECT_EQ(s.code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(s.message(), HasSubstr("does not exist"));
  fs::create_directories(root_ / "empty");
  s = LoadClientFolder(Dir("empty"), kImages).status();
  EXPECT_EQ(s.code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(s.message(), HasSubstr("holds no training data: expected train-images-idx3-ubyte"));

  ASSERT_TRUE(WriteClientFolder(Dir("half"), Images(2, 0), nullptr).ok());
  fs::remove(root_ / "half" / "train-labels-idx1-ubyte.gz");
  s = LoadClientFolder(Dir("half"), kImages).status();
  EXPECT_THAT(s.message(), HasSubstr("has train-images-idx3-ubyte but not train-labels"));

  ASSERT_TRUE(WriteClientFolder(Dir("both"), Images(2, 0), nullptr).ok());
  Write(root_ / "both" / "train.csv", "a,label\n1,0\n");
  s = LoadClientFolder(Dir("both"), kImages).status();
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(s.message(), HasSubstr("keep one format"));
}

TEST_F(ClientFolderTest, CountsWithoutAModel) {
  const Dataset train = Images(5, 0), test = Images(3, 1);
  ASSERT_TRUE(WriteClientFolder(Dir("site-1"), train, &test).ok());
  absl::StatusOr<ClientFolderCounts> c = CountClientFolder(Dir("site-1"));
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->name, "site-1");
  EXPECT_EQ(c->train, 5u);
  EXPECT_EQ(c->test, 3u);

  fs::create_directories(root_ / "t");
  Write(root_ / "t" / "train.csv", "# rows\nlabel,a\n1,0.5\n\n0,1\n0,2\n");
  c = CountClientFolder(Dir("t"));
  ASSERT_TRUE(c.ok()) << c.status();
  EXPECT_EQ(c->train, 3u);
  EXPECT_EQ(c->test, 0u);

  EXPECT_EQ(CountClientFolder(Dir("nope")).status().code(), absl::StatusCode::kNotFound);
  fs::create_directories(root_ / "header-only");
  Write(root_ / "header-only" / "train.csv", "label,a\n");
  absl::Status s = CountClientFolder(Dir("header-only")).status();
  EXPECT_EQ(s.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(s.message(), HasSubstr("holds no examples"));
}

TEST_F(ClientFolderTest, RewritingAFolderLeavesOneFormat) {
  const Dataset test = Images(1, 2);
  ASSERT_TRUE(WriteClientFolder(Dir("x"), Images(2, 0), &test).ok());
  const Dataset table = Dataset::FromF32({6, 1, 1}, 4, std::vector<float>(12, 0.5f), {0, 3});
  ASSERT_TRUE(WriteClientFolder(Dir("x"), table, nullptr).ok());
  absl::StatusOr<ClientFolder> f = LoadClientFolder(Dir("x"), {{6, 1, 1}, 4});
  ASSERT_TRUE(f.ok()) << f.status();
  EXPECT_TRUE(f->tabular);
  EXPECT_FALSE(f->test.has_value());
}

}  // namespace
}  // namespace fedsim
