#include "data/idx_cache.h"

#include <unistd.h>

#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <optional>
#include <string>
#include <vector>

#include "data/dataset.h"
#include "gtest/gtest.h"
#include "util/rng.h"

namespace fedsim {
namespace {

namespace fs = std::filesystem;

// Sets an environment variable for one test and puts the old value back.
class ScopedEnv {
 public:
  ScopedEnv(const char* name, const char* value) : name_(name) {
    if (const char* old = std::getenv(name); old != nullptr) old_ = old;
    if (value == nullptr) {
      ::unsetenv(name);
    } else {
      ::setenv(name, value, 1);
    }
  }
  ~ScopedEnv() {
    if (old_.has_value()) {
      ::setenv(name_, old_->c_str(), 1);
    } else {
      ::unsetenv(name_);
    }
  }

 private:
  const char* name_;
  std::optional<std::string> old_;
};

// A gzipped source too big and too random to skip the cache, and a cache
// folder, both fresh per test.
class IdxCacheTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
    root_ = fs::path(::testing::TempDir()) /
            (std::string("fedsim_idx_cache_") + info->name() + "_" + std::to_string(getpid()));
    fs::remove_all(root_);
    fs::create_directories(root_);
    cache_ = (root_ / "cache").string();
    env_.emplace("FEDSIM_CACHE_DIR", cache_.c_str());
    source_ = (root_ / "images-idx3-ubyte.gz").string();
    data_ = RandomBytes(kRows * kCols, 1);
    ASSERT_TRUE(WriteIdxFile(source_, {kRows, kCols}, data_).ok());
    ASSERT_GE(fs::file_size(source_), kIdxCacheMinSourceBytes);
  }
  void TearDown() override {
    env_.reset();
    fs::remove_all(root_);
  }

  static std::vector<uint8_t> RandomBytes(size_t n, uint64_t seed) {
    Rng rng(seed, "idx-cache-test");
    std::vector<uint8_t> out(n);
    for (auto& b : out) b = static_cast<uint8_t>(rng.NextU64());
    return out;
  }
  std::string CopyPath() const {
    std::optional<std::string> p = IdxCachePath(cache_, source_);
    EXPECT_TRUE(p.has_value());
    return p.value_or("");
  }

  static constexpr uint32_t kRows = 1100;
  static constexpr uint32_t kCols = 1000;
  fs::path root_;
  std::string cache_;
  std::string source_;
  std::vector<uint8_t> data_;
  std::optional<ScopedEnv> env_;
};

TEST_F(IdxCacheTest, FirstReadWritesTheCopyAndLaterReadsTakeIt) {
  absl::StatusOr<IdxArray> first = ReadIdxFile(source_);
  ASSERT_TRUE(first.ok()) << first.status();
  EXPECT_EQ(first->data, data_);
  const std::string copy = CopyPath();
  ASSERT_TRUE(fs::exists(copy));
  // Uncompressed: 8 header bytes + 4 per dim + the data.
  EXPECT_EQ(fs::file_size(copy), 4 + 4 * 2 + data_.size());
  EXPECT_EQ(copy.rfind(cache_ + "/images-idx3-ubyte-", 0), 0u) << copy;

  // Put other (valid) content in the copy: a read that returns it took the
  // copy, not the source.
  IdxArray other{0x08, {kRows, kCols}, RandomBytes(kRows * kCols, 2)};
  ASSERT_TRUE(WriteIdxCacheFile(copy, other));
  absl::StatusOr<IdxArray> second = ReadIdxFile(source_);
  ASSERT_TRUE(second.ok()) << second.status();
  EXPECT_EQ(second->data, other.data);
  EXPECT_EQ(second->dims, first->dims);
}

TEST_F(IdxCacheTest, AReplacedSourceNeverHitsTheOldCopy) {
  ASSERT_TRUE(ReadIdxFile(source_).ok());
  const std::string old_copy = CopyPath();
  const std::vector<uint8_t> fresh = RandomBytes(kRows * kCols, 3);
  ASSERT_TRUE(WriteIdxFile(source_, {kRows, kCols}, fresh).ok());
  // Same size; a new inode or mtime tells it apart (set the mtime apart
  // anyway, for filesystems that reuse both at once).
  fs::last_write_time(source_, fs::last_write_time(source_) + std::chrono::seconds(5));
  EXPECT_NE(CopyPath(), old_copy);
  absl::StatusOr<IdxArray> read = ReadIdxFile(source_);
  ASSERT_TRUE(read.ok()) << read.status();
  EXPECT_EQ(read->data, fresh);
}

TEST_F(IdxCacheTest, ADamagedCopyIsReplaced) {
  ASSERT_TRUE(ReadIdxFile(source_).ok());
  const std::string copy = CopyPath();
  const uintmax_t whole = fs::file_size(copy);
  fs::resize_file(copy, whole / 2);  // a copy cut short
  absl::StatusOr<IdxArray> read = ReadIdxFile(source_);
  ASSERT_TRUE(read.ok()) << read.status();
  EXPECT_EQ(read->data, data_);
  EXPECT_EQ(fs::file_size(copy), whole);
}

TEST_F(IdxCacheTest, AnUnusableFolderOnlyCostsTheSpeedUp) {
  // A file where the folder should be: the copy cannot be written.
  std::ofstream(cache_) << "in the way";
  absl::StatusOr<IdxArray> read = ReadIdxFile(source_);
  ASSERT_TRUE(read.ok()) << read.status();
  EXPECT_EQ(read->data, data_);
  EXPECT_TRUE(fs::is_regular_file(cache_));
  // No temporary files left beside it.
  int entries = 0;
  for (const auto& e : fs::directory_iterator(root_)) entries += e.is_regular_file() ? 1 : 0;
  EXPECT_EQ(entries, 2);  // the source and the blocking file
}

TEST_F(IdxCacheTest, SmallAndPlainSourcesAreReadDirectly) {
  const std::string small = (root_ / "labels-idx1-ubyte.gz").string();
  ASSERT_TRUE(WriteIdxFile(small, {1000}, RandomBytes(1000, 4)).ok());
  const std::string plain = (root_ / "plain-idx2-ubyte").string();
  {
    IdxArray big{0x08, {kRows, kCols}, data_};
    ASSERT_TRUE(WriteIdxCacheFile(plain, big));  // an uncompressed IDX file
  }
  ASSERT_TRUE(ReadIdxFile(small).ok());
  absl::StatusOr<IdxArray> read = ReadIdxFile(plain);
  ASSERT_TRUE(read.ok()) << read.status();
  EXPECT_EQ(read->data, data_);
  EXPECT_FALSE(fs::exists(cache_));
}

// ReadIdxBytes maps the copy (writing it first when there is none), and
// gives the source's bytes when there is no copy to map.
TEST_F(IdxCacheTest, BytesComeMappedFromTheCopy) {
  absl::StatusOr<IdxBytes> first = ReadIdxBytes(source_);  // writes the copy, then maps it
  ASSERT_TRUE(first.ok()) << first.status();
  EXPECT_EQ(first->dims, (std::vector<uint32_t>{kRows, kCols}));
  EXPECT_EQ(std::vector<uint8_t>(first->data.begin(), first->data.end()), data_);
  const std::string copy = CopyPath();
  ASSERT_TRUE(fs::exists(copy));
  // The bytes are the copy's: other (valid) content there is what a later
  // read returns, and the mapping outlives the copy's name.
  IdxArray other{0x08, {kRows, kCols}, RandomBytes(kRows * kCols, 5)};
  ASSERT_TRUE(WriteIdxCacheFile(copy, other));
  absl::StatusOr<IdxBytes> second = ReadIdxBytes(source_);
  ASSERT_TRUE(second.ok()) << second.status();
  fs::remove(copy);
  EXPECT_EQ(std::vector<uint8_t>(second->data.begin(), second->data.end()), other.data);
  // The first mapping still shows what it mapped (renaming a new copy into
  // place does not change an open one).
  EXPECT_EQ(std::vector<uint8_t>(first->data.begin(), first->data.end()), data_);

  // A damaged copy is replaced, as ReadIdxFile replaces it.
  ASSERT_TRUE(ReadIdxBytes(source_).ok());
  fs::resize_file(copy, fs::file_size(copy) - 1);
  absl::StatusOr<IdxBytes> mended = ReadIdxBytes(source_);
  ASSERT_TRUE(mended.ok()) << mended.status();
  EXPECT_EQ(std::vector<uint8_t>(mended->data.begin(), mended->data.end()), data_);
  EXPECT_EQ(fs::file_size(copy), 4 + 4 * 2 + data_.size());

  // No cache: the source's bytes, in memory.
  ScopedEnv off("FEDSIM_CACHE_DIR", "off");
  absl::StatusOr<IdxBytes> direct = ReadIdxBytes(source_);
  ASSERT_TRUE(direct.ok()) << direct.status();
  EXPECT_EQ(std::vector<uint8_t>(direct->data.begin(), direct->data.end()), data_);
}

TEST_F(IdxCacheTest, OnlyAWholeValidCopyIsMapped) {
  const std::string path = (root_ / "copy").string();
  EXPECT_FALSE(MapIdxCacheFile(path).has_value());  // none
  IdxArray array{0x08, {3, 5}, RandomBytes(15, 6)};
  ASSERT_TRUE(WriteIdxCacheFile(path, array));
  std::optional<IdxBytes> mapped = MapIdxCacheFile(path);
  ASSERT_TRUE(mapped.has_value());
  EXPECT_EQ(mapped->dims, array.dims);
  EXPECT_EQ(std::vector<uint8_t>(mapped->data.begin(), mapped->data.end()), array.data);
  auto write = [&](const std::vector<uint8_t>& bytes) {
    std::ofstream(path, std::ios::binary | std::ios::trunc)
        .write(reinterpret_cast<const char*>(bytes.data()),
               static_cast<std::streamsize>(bytes.size()));
  };
  std::vector<uint8_t> good = {0, 0, 8, 2, 0, 0, 0, 3, 0, 0, 0, 5};
  good.insert(good.end(), array.data.begin(), array.data.end());
  write(good);
  EXPECT_TRUE(MapIdxCacheFile(path).has_value());
  std::vector<uint8_t> bad = good;
  bad.push_back(0);  // a byte past the dims' data
  write(bad);
  EXPECT_FALSE(MapIdxCacheFile(path).has_value());
  bad = good;
  bad.pop_back();  // one short
  write(bad);
  EXPECT_FALSE(MapIdxCacheFile(path).has_value());
  bad = good;
  bad[2] = 0x09;  // not unsigned bytes
  write(bad);
  EXPECT_FALSE(MapIdxCacheFile(path).has_value());
  bad = good;
  bad[3] = 0;  // no dims
  write(bad);
  EXPECT_FALSE(MapIdxCacheFile(path).has_value());
  bad = good;
  bad[4] = 0xff;  // dims far past the file
  write(bad);
  EXPECT_FALSE(MapIdxCacheFile(path).has_value());
  write({0, 0, 8});  // shorter than a header
  EXPECT_FALSE(MapIdxCacheFile(path).has_value());
}

TEST(IdxCacheDirTest, FollowsTheEnvironment) {
  {
    ScopedEnv cache("FEDSIM_CACHE_DIR", "/tmp/somewhere");
    EXPECT_EQ(IdxCacheDir(), "/tmp/somewhere");
  }
  {
    ScopedEnv cache("FEDSIM_CACHE_DIR", "off");
    EXPECT_EQ(IdxCacheDir(), std::nullopt);
  }
  {
    ScopedEnv cache("FEDSIM_CACHE_DIR", "");
    EXPECT_EQ(IdxCacheDir(), std::nullopt);
  }
  ScopedEnv cache("FEDSIM_CACHE_DIR", nullptr);
  {
    ScopedEnv xdg("XDG_CACHE_HOME", "/var/cache/u");
    EXPECT_EQ(IdxCacheDir(), "/var/cache/u/fedsim");
  }
  ScopedEnv xdg("XDG_CACHE_HOME", nullptr);
  {
    ScopedEnv home("HOME", "/home/u");
    EXPECT_EQ(IdxCacheDir(), "/home/u/.cache/fedsim");
  }
  ScopedEnv home("HOME", nullptr);
  EXPECT_EQ(IdxCacheDir(), std::nullopt);
}

TEST(IdxCacheDirTest, NoCopyPathForAMissingSource) {
  EXPECT_EQ(IdxCachePath("/tmp", "/nonexistent/file.gz"), std::nullopt);
}

}  // namespace
}  // namespace fedsim
