#include "util/file.h"

#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <filesystem>
#include <string>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace fedsim {
namespace {

using ::testing::HasSubstr;

// A fresh folder per test, removed afterwards.
class FileTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = absl::StrCat(::testing::TempDir(), "/fedsim_file_test_", getpid(), "_",
                        ::testing::UnitTest::GetInstance()->current_test_info()->name());
    ASSERT_EQ(::mkdir(dir_.c_str(), 0755), 0) << dir_;
  }
  void TearDown() override { std::filesystem::remove_all(dir_); }

  std::string Write(const std::string& name, const std::string& bytes) {
    const std::string path = absl::StrCat(dir_, "/", name);
    FILE* f = std::fopen(path.c_str(), "wb");
    EXPECT_NE(f, nullptr) << path;
    if (f != nullptr) {
      std::fwrite(bytes.data(), 1, bytes.size(), f);
      std::fclose(f);
    }
    return path;
  }

  std::string dir_;
};

TEST_F(FileTest, ReadsTheBytesAsTheyAre) {
  // CR, NUL and a byte-order mark are the format's business, not this one's.
  const std::string bytes = std::string(
      "\xEF\xBB\xBF"
      "a\r\nb\0c",
      9);
  absl::StatusOr<std::string> text = ReadFileToString(Write("a.txt", bytes));
  ASSERT_TRUE(text.ok()) << text.status();
  EXPECT_EQ(*text, bytes);
  text = ReadFileToString(Write("empty", ""));
  ASSERT_TRUE(text.ok()) << text.status();
  EXPECT_EQ(*text, "");
}

TEST_F(FileTest, ReadsFilesLargerThanOneBuffer) {
  std::string bytes(200000, 'x');
  for (size_t i = 0; i < bytes.size(); ++i) bytes[i] = static_cast<char>('a' + i % 26);
  absl::StatusOr<std::string> text = ReadFileToString(Write("big", bytes));
  ASSERT_TRUE(text.ok()) << text.status();
  EXPECT_EQ(*text, bytes);
}

TEST_F(FileTest, MissingFileIsNotFoundInWords) {
  const std::string path = dir_ + "/nope.textproto";
  absl::StatusOr<std::string> text = ReadFileToString(path);
  EXPECT_EQ(text.status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(text.status().message(), "cannot read " + path + ": no such file or directory");
}

// Regression: a directory given where a file belongs used to read as an empty
// file (and `fedsim validate /tmp` ran the default scenario).
TEST_F(FileTest, DirectoryIsRefused) {
  absl::StatusOr<std::string> text = ReadFileToString(dir_);
  EXPECT_EQ(text.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(text.status().message(), "cannot read " + dir_ + ": is a directory, not a file");
  text = ReadFileToString(dir_, {.what = "the scenario file"});
  EXPECT_EQ(text.status().message(),
            "cannot read the scenario file " + dir_ + ": is a directory, not a file");
}

TEST_F(FileTest, FileOnTheWayIsNamed) {
  const std::string file = Write("a.textproto", "x");
  const std::string path = file + "/b.textproto";
  absl::StatusOr<std::string> text = ReadFileToString(path);
  EXPECT_EQ(text.status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(
      text.status().message(),
      "cannot read " + path + ": not a directory (a folder on the way, " + file + ", is a file)");
}

TEST_F(FileTest, LargerThanTheLimitIsRefused) {
  const std::string path = Write("ten", "0123456789");
  EXPECT_TRUE(ReadFileToString(path, {.what = "", .max_bytes = 10}).ok());
  absl::StatusOr<std::string> text = ReadFileToString(path, {.what = "", .max_bytes = 9});
  EXPECT_EQ(text.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(text.status().message(),
            "cannot read " + path + ": it holds more than 9 bytes; is it the right file?");
  // A device without an end stops at the limit too.
  text = ReadFileToString("/dev/zero", {.what = "", .max_bytes = 100000});
  EXPECT_EQ(text.status().code(), absl::StatusCode::kInvalidArgument);
}

// The tests run as root, where EACCES never happens: the message is checked
// through the builder.
TEST(FileReadErrorTest, SaysEachReasonInWords) {
  absl::Status s = FileReadError("/etc/token", EACCES);
  EXPECT_EQ(s.code(), absl::StatusCode::kPermissionDenied);
  EXPECT_EQ(s.message(), "cannot read /etc/token: permission denied");
  s = FileReadError("/etc/token", EACCES, "the run token file");
  EXPECT_EQ(s.message(), "cannot read the run token file /etc/token: permission denied");
  s = FileReadError("/etc/token", EPERM);
  EXPECT_EQ(s.code(), absl::StatusCode::kPermissionDenied);
  s = FileReadError("x", EIO);
  EXPECT_EQ(s.code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(s.message(), "cannot read x: input/output error");
  s = FileReadError("x", EMFILE);
  EXPECT_EQ(s.code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(s.message(), "cannot read x: too many open files");
}

TEST(ErrnoTextTest, LowerCaseWordsAndUnknownNumbers) {
  EXPECT_EQ(ErrnoText(ENOENT), "no such file or directory");
  EXPECT_EQ(ErrnoText(EACCES), "permission denied");
  EXPECT_EQ(ErrnoText(EISDIR), "is a directory");
  EXPECT_EQ(ErrnoText(99999), "error 99999");
}

TEST(SkipByteOrderMarkTest, OnlyAtTheStart) {
  EXPECT_EQ(SkipByteOrderMark("\xEF\xBB\xBFname: \"x\""), "name: \"x\"");
  EXPECT_EQ(SkipByteOrderMark("\xEF\xBB\xBF"), "");
  EXPECT_EQ(SkipByteOrderMark("a\xEF\xBB\xBF"), "a\xEF\xBB\xBF");
  EXPECT_EQ(SkipByteOrderMark("\xEF\xBB"), "\xEF\xBB");  // a cut mark is text
  EXPECT_EQ(SkipByteOrderMark(""), "");
}

TEST(TextLinesTest, WindowsAndUnixLineEndsReadTheSame) {
  using ::testing::ElementsAre;
  EXPECT_THAT(TextLines("a\nb\n"), ElementsAre("a", "b"));
  EXPECT_THAT(TextLines("\xEF\xBB\xBF"
                        "a\r\nb\r\n"),
              ElementsAre("a", "b"));
  EXPECT_THAT(TextLines("a\r\n\r\nlast"), ElementsAre("a", "", "last"));
  // Only the '\r' of a line end goes; one inside a line stays.
  EXPECT_THAT(TextLines("a\rb\r\r\n"), ElementsAre("a\rb\r"));
  EXPECT_TRUE(TextLines("").empty());
  EXPECT_THAT(TextLines("\n"), ElementsAre(""));
}

}  // namespace
}  // namespace fedsim
