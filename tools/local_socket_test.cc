#include "tools/local_socket.h"

#include <sys/stat.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>

#include "gtest/gtest.h"
#include "rpc/auth.h"

namespace fedsim {
namespace {

TEST(LocalSocketDirTest, PrivateDirectoryRemovedWithItsSocket) {
  std::string dir;
  {
    absl::StatusOr<LocalSocketDir> made = LocalSocketDir::Create();
    ASSERT_TRUE(made.ok()) << made.status();
    dir = made->dir();
    struct stat st {};
    ASSERT_EQ(stat(dir.c_str(), &st), 0);
    EXPECT_TRUE(S_ISDIR(st.st_mode));
    EXPECT_EQ(st.st_mode & 0777, 0700u);
    EXPECT_EQ(made->address(), "unix:" + dir + "/server.sock");
    EXPECT_TRUE(CheckAddress(made->address()).ok());
    // Stands in for the socket file the server makes.
    std::FILE* f = std::fopen(made->socket_path().c_str(), "w");
    ASSERT_NE(f, nullptr);
    std::fclose(f);
    LocalSocketDir moved = *std::move(made);  // the moved-from one removes nothing
  }
  EXPECT_FALSE(std::filesystem::exists(dir));
}

TEST(LocalSocketDirTest, LongTmpdirFallsBackToTmp) {
  const char* old = std::getenv("TMPDIR");
  const std::string saved = old != nullptr ? old : "";
  setenv("TMPDIR", ("/" + std::string(200, 'x')).c_str(), 1);
  absl::StatusOr<LocalSocketDir> made = LocalSocketDir::Create();
  if (old != nullptr) {
    setenv("TMPDIR", saved.c_str(), 1);
  } else {
    unsetenv("TMPDIR");
  }
  ASSERT_TRUE(made.ok()) << made.status();
  EXPECT_EQ(made->dir().rfind("/tmp/fedsim-", 0), 0u) << made->dir();
  EXPECT_LE(made->socket_path().size(), kMaxUnixSocketPath);
}

}  // namespace
}  // namespace fedsim
