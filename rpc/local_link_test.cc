#include "rpc/local_link.h"

#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <string>
#include <thread>
#include <vector>

#include "gtest/gtest.h"
#include "proto/fedsim.pb.h"

namespace fedsim {
namespace {

// A connected pair: [0] for the client, [1] for the test's own server.
std::pair<int, int> Pair() {
  int fds[2] = {-1, -1};
  EXPECT_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds), 0);
  return {fds[0], fds[1]};
}

// Concurrent calls are matched to their answers by id, whatever order the
// answers come in: here the server answers the calls in reverse order, each
// with its own payload turned into upper case.
TEST(LocalLinkTest, ConcurrentCallsGetTheirOwnAnswersInAnyOrder) {
  auto [client_fd, server_fd] = Pair();
  LinkClient client(client_fd);
  LinkEnd server(server_fd);
  constexpr int kCalls = 6;
  std::vector<std::string> answers(kCalls);
  std::vector<std::thread> callers;
  for (int i = 0; i < kCalls; ++i) {
    callers.emplace_back([&, i] {
      absl::StatusOr<std::string> got =
          client.Call(LinkMethod::kHeartbeat, "call-" + std::to_string(i));
      answers[i] = got.ok() ? *got : std::string(got.status().message());
    });
  }
  std::vector<LinkFrame> calls(kCalls);
  for (LinkFrame& f : calls) {
    ASSERT_TRUE(server.Read(&f).ok());
    EXPECT_FALSE(f.response);
    EXPECT_EQ(f.method, LinkMethod::kHeartbeat);
  }
  std::reverse(calls.begin(), calls.end());
  for (const LinkFrame& f : calls) {
    LinkFrame answer = f;
    answer.response = true;
    std::transform(answer.payload.begin(), answer.payload.end(), answer.payload.begin(),
                   [](char c) { return static_cast<char>(std::toupper(c)); });
    ASSERT_TRUE(server.Write(answer).ok());
  }
  for (std::thread& t : callers) t.join();
  for (int i = 0; i < kCalls; ++i) EXPECT_EQ(answers[i], "CALL-" + std::to_string(i));
  EXPECT_FALSE(client.closed());
}

// A refusal comes back as the server's status; a message answer parses.
TEST(LocalLinkTest, StatusesAndMessagesComeBackAsSent) {
  auto [client_fd, server_fd] = Pair();
  LinkClient client(client_fd);
  LinkEnd server(server_fd);
  std::thread serve([&server] {
    LinkFrame f;
    ASSERT_TRUE(server.Read(&f).ok());
    ASSERT_TRUE(
        WriteLinkResponse(&server, f, absl::NotFoundError("model global@3 is not kept"), nullptr)
            .ok());
    ASSERT_TRUE(server.Read(&f).ok());
    wire::GetTaskRequest request;
    ASSERT_TRUE(request.ParseFromString(f.payload));
    wire::GetTaskResponse response;
    response.set_run_finished(request.max_tasks() == 7);
    ASSERT_TRUE(WriteLinkResponse(&server, f, absl::OkStatus(), &response).ok());
  });
  absl::StatusOr<std::string> refused = client.Call(LinkMethod::kFetchModel, "x");
  EXPECT_TRUE(absl::IsNotFound(refused.status())) << refused.status();
  EXPECT_EQ(refused.status().message(), "model global@3 is not kept");
  wire::GetTaskRequest request;
  request.set_max_tasks(7);
  wire::GetTaskResponse response;
  EXPECT_TRUE(client.Call(LinkMethod::kGetTask, request, &response).ok());
  EXPECT_TRUE(response.run_finished());
  serve.join();
}

// When the other process goes away, a caller that waits and every later
// call fail with Unavailable at once, and closed() says so.
TEST(LocalLinkTest, TheOtherEndClosingFailsWaitingAndLaterCalls) {
  auto [client_fd, server_fd] = Pair();
  LinkClient client(client_fd);
  absl::Status waiting;
  std::thread caller([&] { waiting = client.Call(LinkMethod::kGetTask, "poll").status(); });
  {
    LinkEnd server(server_fd);
    LinkFrame f;
    ASSERT_TRUE(server.Read(&f).ok());  // the call arrived; then the server ends
  }
  caller.join();
  EXPECT_TRUE(absl::IsUnavailable(waiting)) << waiting;
  EXPECT_TRUE(client.closed());
  absl::Status later = client.Call(LinkMethod::kHeartbeat, "beat").status();
  EXPECT_TRUE(absl::IsUnavailable(later)) << later;
}

// Bytes that are not a frame header are refused, not taken for a call.
TEST(LocalLinkTest, AHeaderThatIsNotOneIsDataLoss) {
  auto [client_fd, server_fd] = Pair();
  LinkEnd server(server_fd);
  const char junk[16] = {1, 2, 3, 4, 5, 6, 7, 8, 0, 0, 0, 0, 99, 0, 0, 0};
  ASSERT_EQ(write(client_fd, junk, sizeof(junk)), static_cast<ssize_t>(sizeof(junk)));
  LinkFrame f;
  absl::Status read = server.Read(&f);
  EXPECT_TRUE(absl::IsDataLoss(read)) << read;
  close(client_fd);
}

// ShutDown wakes a reader blocked on a link nobody writes to.
TEST(LocalLinkTest, ShutDownEndsABlockedRead) {
  auto [client_fd, server_fd] = Pair();
  LinkEnd server(server_fd);
  absl::Status read;
  std::thread reader([&] {
    LinkFrame f;
    read = server.Read(&f);
  });
  absl::SleepFor(absl::Milliseconds(20));
  server.ShutDown();
  reader.join();
  EXPECT_TRUE(absl::IsUnavailable(read)) << read;
  close(client_fd);
}

}  // namespace
}  // namespace fedsim
