#include "rpc/auth.h"

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <set>
#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace fedsim {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

TEST(RandomHexTest, GivesDistinctSecretsOfTheAskedSize) {
  std::set<std::string> seen;
  for (int i = 0; i < 100; ++i) {
    auto s = RandomHex(16);
    ASSERT_TRUE(s.ok()) << s.status();
    EXPECT_EQ(s->size(), 32u);
    EXPECT_EQ(s->find_first_not_of("0123456789abcdef"), std::string::npos) << *s;
    seen.insert(*s);
  }
  EXPECT_EQ(seen.size(), 100u);  // 128 random bits never repeat in practice
}

TEST(ConstantTimeEqualsTest, ComparesWholeStrings) {
  EXPECT_TRUE(ConstantTimeEquals("abcdef", "abcdef"));
  EXPECT_FALSE(ConstantTimeEquals("abcdef", "abcdeg"));
  EXPECT_FALSE(ConstantTimeEquals("abcdef", "abcde"));
  EXPECT_FALSE(ConstantTimeEquals("abcde", "abcdef"));
  EXPECT_FALSE(ConstantTimeEquals("abc", ""));
  EXPECT_TRUE(ConstantTimeEquals("", ""));
}

TEST(CheckBearerTest, WrongOrMissingTokenIsUnauthenticatedWithoutEitherValue) {
  const std::string token = "0123456789abcdef0123";
  EXPECT_TRUE(CheckBearer(BearerValue(token), token).ok());
  absl::Status missing = CheckBearer(std::nullopt, token);
  EXPECT_EQ(missing.code(), absl::StatusCode::kUnauthenticated);
  EXPECT_THAT(missing.message(), HasSubstr("missing run token"));
  absl::Status wrong = CheckBearer(BearerValue("guessed-guessed-guessed"), token);
  EXPECT_EQ(wrong.code(), absl::StatusCode::kUnauthenticated);
  EXPECT_THAT(wrong.message(), HasSubstr("wrong run token"));
  EXPECT_THAT(wrong.message(), Not(HasSubstr("guessed")));
  EXPECT_THAT(wrong.message(), Not(HasSubstr(token)));
  // A prefix of the token is not the token.
  EXPECT_EQ(CheckBearer(BearerValue(token.substr(0, 10)), token).code(),
            absl::StatusCode::kUnauthenticated);
}

class ReadRunTokenTest : public ::testing::Test {
 protected:
  void SetUp() override { unsetenv(kTokenEnvVar); }
  void TearDown() override {
    unsetenv(kTokenEnvVar);
    std::filesystem::remove(path_);
  }
  std::string path_ =
      std::filesystem::temp_directory_path() / ("fedsim_token_" + std::to_string(getpid()));
};

TEST_F(ReadRunTokenTest, FileWinsOverTheEnvironmentAndIsTrimmed) {
  std::ofstream(path_) << "  file-token-0123456789\n";
  setenv(kTokenEnvVar, "env-token-0123456789", 1);
  auto token = ReadRunToken(path_);
  ASSERT_TRUE(token.ok()) << token.status();
  EXPECT_EQ(*token, "file-token-0123456789");
  token = ReadRunToken("");
  ASSERT_TRUE(token.ok()) << token.status();
  EXPECT_EQ(*token, "env-token-0123456789");
  unsetenv(kTokenEnvVar);
  token = ReadRunToken("");
  ASSERT_TRUE(token.ok());
  EXPECT_EQ(*token, "");  // none: the server needs none (loopback)
}

TEST_F(ReadRunTokenTest, MissingEmptyShortOrOddTokensAreErrorsNamingTheSource) {
  auto missing = ReadRunToken(path_ + ".absent");
  EXPECT_EQ(missing.status().code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(missing.status().message(), HasSubstr(path_ + ".absent"));
  std::ofstream(path_) << "\n";
  EXPECT_THAT(ReadRunToken(path_).status().message(), HasSubstr("is empty"));
  std::ofstream(path_) << "short";
  auto short_token = ReadRunToken(path_);
  EXPECT_EQ(short_token.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(short_token.status().message(), HasSubstr("openssl rand -hex 32"));
  setenv(kTokenEnvVar, "has a space in it 0123456789", 1);
  EXPECT_THAT(ReadRunToken("").status().message(), HasSubstr("$FEDSIM_TOKEN"));
}

TEST(ParseHostPortTest, AcceptsHostsAndRefusesPortsOutOfRange) {
  auto v4 = ParseHostPort("127.0.0.1:50051");
  ASSERT_TRUE(v4.ok());
  EXPECT_EQ(v4->host, "127.0.0.1");
  EXPECT_EQ(v4->port, 50051);
  auto v6 = ParseHostPort("[::1]:0");
  ASSERT_TRUE(v6.ok()) << v6.status();
  EXPECT_EQ(v6->host, "::1");
  EXPECT_EQ(v6->port, 0);
  // Regression: 99999 used to listen silently on another port.
  auto big = ParseHostPort("127.0.0.1:99999");
  EXPECT_EQ(big.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(big.status().message(), HasSubstr("0 to 65535, got '99999'"));
  for (const char* bad : {"127.0.0.1", ":50051", "host:", "host:-1", "host:+5", "host:5x",
                          "::1:50051", "[::1]50051"}) {
    EXPECT_FALSE(ParseHostPort(bad).ok()) << bad;
  }
}

TEST(CheckAddressTest, HostPortOrUnixSocket) {
  EXPECT_TRUE(CheckAddress("127.0.0.1:50051").ok());
  EXPECT_TRUE(CheckAddress("unix:/tmp/fedsim-abc/server.sock").ok());
  EXPECT_EQ(UnixSocketPath("unix:/tmp/s.sock"), "/tmp/s.sock");
  EXPECT_EQ(UnixSocketPath("127.0.0.1:1"), std::nullopt);
  EXPECT_THAT(CheckAddress("unix:").message(), HasSubstr("1 to 107 bytes, got 0"));
  const std::string longest = "unix:/" + std::string(kMaxUnixSocketPath - 1, 'a');
  EXPECT_TRUE(CheckAddress(longest).ok());
  EXPECT_THAT(CheckAddress(longest + "a").message(), HasSubstr("got 108"));
  EXPECT_THAT(CheckAddress("127.0.0.1").message(), HasSubstr("no port"));
}

TEST(IsLoopbackHostTest, OnlyThisMachine) {
  for (const char* h : {"localhost", "127.0.0.1", "127.1.2.3", "::1"}) {
    EXPECT_TRUE(IsLoopbackHost(h)) << h;
  }
  for (const char* h : {"0.0.0.0", "::", "10.0.0.1", "128.0.0.1", "example.org", "127.0.0"}) {
    EXPECT_FALSE(IsLoopbackHost(h)) << h;
  }
}

TEST(IsLoopbackPeerTest, GrpcPeerStrings) {
  for (const char* p : {"ipv4:127.0.0.1:5000", "ipv4:127.9.9.9:1", "ipv6:[::1]:5000",
                        "ipv6:%5B::1%5D:5000", "unix:/tmp/s.sock", "unix-abstract:x"}) {
    EXPECT_TRUE(IsLoopbackPeer(p)) << p;
  }
  for (const char* p : {"ipv4:10.0.0.1:5000", "ipv6:[fe80::1]:5000", "ipv6:%5B2001:db8::1%5D:1",
                        "127.0.0.1:5000", "ipv4:127.0.0.1", "ipv6:::1", "", "inproc"}) {
    EXPECT_FALSE(IsLoopbackPeer(p)) << p;
  }
}

}  // namespace
}  // namespace fedsim
