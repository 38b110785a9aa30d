#include "report/run_events.h"

#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace fedsim {
namespace {

using ::testing::ElementsAre;

TEST(RunEventsTest, TasksFromDispatchToTheirEnd) {
  auto ev = ParseRunEvents(
      R"({"ev":"eval","t":0.0,"version":0,"loss":2.3,"accuracy":0.1}
{"ev":"dispatch","t":0.0,"task":1,"client":0,"base":0,"dur":1.5,"seed":7}
{"ev":"dispatch","t":0.5,"task":2,"client":3,"base":0,"dur":2,"seed":8}
{"ev":"dispatch","t":0.5,"task":3,"client":5,"base":0,"dur":9,"seed":9}
{"ev":"arrival","t":1.5,"task":1,"client":0,"base":0,"staleness":0,"accepted":true}
{"ev":"avail","t":1.6,"client":5,"on":false}
{"ev":"lost","t":1.6,"task":3,"client":5,"why":"dropout"}
{"ev":"commit","t":1.5,"version":1,"applied":[{"task":1,"client":0,"staleness":0,"weight":1}]}
{"ev":"dispatch","t":1.5,"task":4,"client":0,"base":1,"dur":1.5,"seed":10}
{"ev":"arrival","t":2.5,"task":2,"client":3,"base":0,"staleness":1,"accepted":false,"reason":"too stale"}
{"ev":"commit","t":2.6,"version":2,"applied":[{"task":9,"client":1,"staleness":2,"weight":1},{"task":8,"client":2,"staleness":4,"weight":1}]}
)",
      "events.jsonl");
  ASSERT_TRUE(ev.ok()) << ev.status();
  ASSERT_EQ(ev->tasks.size(), 4u);
  EXPECT_EQ(ev->tasks[0].kind, TaskSpan::Kind::kAccepted);
  EXPECT_DOUBLE_EQ(ev->tasks[0].end, 1.5);
  EXPECT_EQ(ev->tasks[1].kind, TaskSpan::Kind::kRefused);
  EXPECT_EQ(ev->tasks[1].client, 3u);
  EXPECT_DOUBLE_EQ(ev->tasks[1].start, 0.5);
  EXPECT_DOUBLE_EQ(ev->tasks[1].end, 2.5);
  EXPECT_EQ(ev->tasks[2].kind, TaskSpan::Kind::kLost);
  EXPECT_DOUBLE_EQ(ev->tasks[2].end, 1.6);
  // Still running at the end: it ends with the log.
  EXPECT_EQ(ev->tasks[3].kind, TaskSpan::Kind::kInFlight);
  EXPECT_DOUBLE_EQ(ev->tasks[3].end, 2.6);
  EXPECT_DOUBLE_EQ(ev->end_time, 2.6);
  EXPECT_EQ(ev->max_client, 5u);
  EXPECT_THAT(ev->staleness, ElementsAre(0, 2, 4));
}

TEST(RunEventsTest, BadLinesNameTheirLine) {
  auto ev = ParseRunEvents("{\"ev\":\"eval\",\"t\":0}\n{oops\n", "runs/x/events.jsonl");
  ASSERT_FALSE(ev.ok());
  EXPECT_EQ(std::string(ev.status().message()), "runs/x/events.jsonl:2: not a JSON object");
  EXPECT_EQ(ReadRunEvents("/nonexistent/events.jsonl").status().code(),
            absl::StatusCode::kNotFound);
}

// A log saved on Windows (CRLF line ends, a byte-order mark, a blank line)
// reads as the original, and line numbers still count every line.
TEST(RunEventsTest, WindowsLineEndsAndAByteOrderMarkReadTheSame) {
  std::string text = "\xEF\xBB\xBF";
  for (const char* line : {R"({"ev":"dispatch","t":0.5,"task":1,"client":4})", "",
                           R"({"ev":"arrival","t":2,"task":1,"client":4,"accepted":true})"}) {
    text = text + line + "\r\n";
  }
  auto ev = ParseRunEvents(text, "events.jsonl");
  ASSERT_TRUE(ev.ok()) << ev.status();
  ASSERT_EQ(ev->tasks.size(), 1u);
  EXPECT_EQ(ev->tasks[0].kind, TaskSpan::Kind::kAccepted);
  EXPECT_EQ(ev->tasks[0].client, 4u);
  EXPECT_DOUBLE_EQ(ev->tasks[0].end, 2.0);
  ev = ParseRunEvents("{\"ev\":\"eval\",\"t\":0}\r\n\r\n{oops\r\n", "e.jsonl");
  EXPECT_EQ(std::string(ev.status().message()), "e.jsonl:3: not a JSON object");
}

}  // namespace
}  // namespace fedsim
