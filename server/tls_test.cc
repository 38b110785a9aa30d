// TLS and mutual TLS on the real socket, with certificates made by
// scripts/make-test-certs (openssl) once for the suite.
#include <cstdlib>
#include <filesystem>
#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "rpc/aggregator_client.h"
#include "rpc/credentials.h"
#include "server/grpc_transport.h"
#include "server/transport_test_fixture.h"

#ifndef FEDSIM_SOURCE_DIR
#error "FEDSIM_SOURCE_DIR must name the source tree"
#endif

namespace fedsim {
namespace {

using ::testing::HasSubstr;
using testing_internal::TransportTest;

class TlsTest : public TransportTest {
 protected:
  static void SetUpTestSuite() {
    dir_ = new std::string(std::filesystem::temp_directory_path() /
                           ("fedsim_tls_" + std::to_string(getpid())));
    for (const char* sub : {"a", "b"}) {  // two unrelated CAs
      const std::string cmd = std::string(FEDSIM_SOURCE_DIR) + "/scripts/make-test-certs " + *dir_ +
                              "/" + sub + " > /dev/null";
      ASSERT_EQ(std::system(cmd.c_str()), 0) << cmd;
    }
  }
  static void TearDownTestSuite() {
    std::filesystem::remove_all(*dir_);
    delete dir_;
  }
  static std::string File(const std::string& name) { return *dir_ + "/" + name; }

  // Registers through a channel with `security`; the status of Register.
  absl::Status RegisterWith(const ChannelSecurity& security) {
    auto channel = NewWireChannel(transport_->address(), security);
    if (!channel.ok()) return channel.status();
    AggregatorClient client(*channel);
    client.set_rpc_timeout(absl::Seconds(5));
    return client.Register("tls", 1).status();
  }

  static std::string* dir_;
};
std::string* TlsTest::dir_ = nullptr;

TEST_F(TlsTest, WorkersCheckTheServerCertificateAgainstTheirCa) {
  GrpcServerOptions options;
  options.security.cert_file = File("a/server.pem");
  options.security.key_file = File("a/server.key");
  Start(10, options);
  ChannelSecurity good;
  good.ca_file = File("a/ca.pem");
  EXPECT_TRUE(RegisterWith(good).ok()) << RegisterWith(good);
  // A server whose certificate another CA signed is not trusted.
  ChannelSecurity other_ca;
  other_ca.ca_file = File("b/ca.pem");
  EXPECT_EQ(RegisterWith(other_ca).code(), absl::StatusCode::kUnavailable);
  // Plaintext does not talk to a TLS server.
  EXPECT_EQ(RegisterWith(ChannelSecurity{}).code(), absl::StatusCode::kUnavailable);
  // The name checked is the certificate's: a name it does not carry fails.
  ChannelSecurity wrong_name = good;
  wrong_name.server_name = "not-this-server.example";
  EXPECT_EQ(RegisterWith(wrong_name).code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(transport_->stats().workers_registered, 1u);
}

TEST_F(TlsTest, MutualTlsRefusesWorkersWithoutACertificateOfTheClientCa) {
  GrpcServerOptions options;
  options.security.cert_file = File("a/server.pem");
  options.security.key_file = File("a/server.key");
  options.security.client_ca_file = File("a/ca.pem");
  Start(10, options);
  ChannelSecurity with_cert;
  with_cert.ca_file = File("a/ca.pem");
  with_cert.cert_file = File("a/client.pem");
  with_cert.key_file = File("a/client.key");
  EXPECT_TRUE(RegisterWith(with_cert).ok()) << RegisterWith(with_cert);
  ChannelSecurity no_cert;
  no_cert.ca_file = File("a/ca.pem");
  EXPECT_EQ(RegisterWith(no_cert).code(), absl::StatusCode::kUnavailable);
  ChannelSecurity foreign_cert = with_cert;  // signed by the other CA
  foreign_cert.cert_file = File("b/client.pem");
  foreign_cert.key_file = File("b/client.key");
  EXPECT_EQ(RegisterWith(foreign_cert).code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(transport_->stats().workers_registered, 1u);
}

TEST_F(TlsTest, BadTlsSettingsAreClearErrorsNamingTheFile) {
  ChannelSecurity half;
  half.ca_file = File("a/ca.pem");
  half.cert_file = File("a/client.pem");
  EXPECT_EQ(NewWireChannel("127.0.0.1:1", half).status().code(),
            absl::StatusCode::kInvalidArgument);
  ChannelSecurity missing;
  missing.ca_file = File("absent.pem");
  auto s = NewWireChannel("127.0.0.1:1", missing).status();
  EXPECT_EQ(s.code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(s.message(), HasSubstr("CA certificate " + File("absent.pem")));
  ChannelSecurity not_pem;
  not_pem.ca_file = File("a/token");
  EXPECT_THAT(NewWireChannel("127.0.0.1:1", not_pem).status().message(),
              HasSubstr("is not a PEM file"));

  ServerSecurity client_ca_only;
  client_ca_only.client_ca_file = File("a/ca.pem");
  EXPECT_THAT(NewServerCredentials(client_ca_only).status().message(),
              HasSubstr("mutual TLS needs TLS"));
  ServerSecurity no_key;
  no_key.cert_file = File("a/server.pem");
  EXPECT_EQ(NewServerCredentials(no_key).status().code(), absl::StatusCode::kInvalidArgument);
  // And the server does not start with them.
  ModelStore store;
  GrpcServerOptions options;
  options.security = no_key;
  EXPECT_EQ(StartGrpcTransport(options, "", 1, &store).status().code(),
            absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace fedsim
