#include "util/csv.h"

#include <unistd.h>

#include <cstdio>
#include <string>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace fedsim {
namespace {

using ::testing::HasSubstr;

constexpr absl::string_view kColumns[] = {"client", "start_s", "end_s"};

// What a reader of kColumns builds: (line, client, start) per row.
struct Parsed {
  std::vector<std::pair<size_t, std::pair<uint64_t, double>>> rows;
  absl::Status status;
};

Parsed Read(absl::string_view text, CsvOptions options = {}) {
  Parsed out;
  out.status = ReadCsv(
      text, "t.csv", kColumns,
      [&](const CsvRow& row) -> absl::Status {
        absl::StatusOr<uint64_t> client = row.Uint(0);
        if (!client.ok()) return client.status();
        absl::StatusOr<double> start = row.Double(1);
        if (!start.ok()) return start.status();
        absl::StatusOr<double> end = row.Double(2);
        if (!end.ok()) return end.status();
        if (*end <= *start) return row.Error("end_s is not after start_s");
        out.rows.push_back({row.line(), {*client, *start}});
        return absl::OkStatus();
      },
      options);
  return out;
}

std::string Message(absl::string_view text, CsvOptions options = {}) {
  return std::string(Read(text, options).status.message());
}

TEST(CsvTest, ReadsRowsWithTheirLineNumbers) {
  Parsed p =
      Read("# a comment\nclient,start_s,end_s\n0,1,2\n\n  # indented comment\n 3 , 0.5 ,9\n");
  ASSERT_TRUE(p.status.ok()) << p.status;
  ASSERT_EQ(p.rows.size(), 2u);
  EXPECT_EQ(p.rows[0].first, 3u);
  EXPECT_EQ(p.rows[0].second, std::make_pair(uint64_t{0}, 1.0));
  EXPECT_EQ(p.rows[1].first, 6u);
  EXPECT_EQ(p.rows[1].second, std::make_pair(uint64_t{3}, 0.5));
}

TEST(CsvTest, HeaderOnlyIsAnEmptyTable) {
  Parsed p = Read("client,start_s,end_s");
  EXPECT_TRUE(p.status.ok()) << p.status;
  EXPECT_TRUE(p.rows.empty());
}

TEST(CsvTest, CrlfLineEndsReadLikeLf) {
  Parsed lf = Read("client,start_s,end_s\n0,1,2\n1,2,3.25\n");
  Parsed crlf = Read("client,start_s,end_s\r\n0,1,2\r\n1,2,3.25\r\n");
  ASSERT_TRUE(crlf.status.ok()) << crlf.status;
  EXPECT_EQ(crlf.rows, lf.rows);
  // Lines are still counted by '\n' alone.
  EXPECT_EQ(Message("client,start_s,end_s\r\n0,1,2\r\n1,x,3\r\n"),
            "t.csv:3: start_s 'x' is not a finite number");
}

TEST(CsvTest, ByteOrderMarkAtTheStartIsIgnored) {
  Parsed p = Read(
      "\xEF\xBB\xBF"
      "client,start_s,end_s\n0,1,2\n");
  ASSERT_TRUE(p.status.ok()) << p.status;
  EXPECT_EQ(p.rows.size(), 1u);
  // Only at the very start: elsewhere the bytes are cell text.
  EXPECT_THAT(Message("client,start_s,end_s\n\xEF\xBB\xBF"
                      "0,1,2\n"),
              HasSubstr("t.csv:2: client '\xEF\xBB\xBF"
                        "0' is not an integer >= 0"));
}

TEST(CsvTest, WrongHeaderStopsAtItsLine) {
  EXPECT_EQ(Message("\n# c\nclient,start,end\n0,1,2\n"),
            "t.csv:3: expected the header 'client,start_s,end_s', got 'client,start,end'");
  EXPECT_THAT(Message("client,start_s\n"), HasSubstr("t.csv:1: expected the header"));
  EXPECT_THAT(Message("client,start_s,end_s,extra\n"), HasSubstr("t.csv:1: expected the header"));
  // A header error is not collected with row errors: nothing after it can be read.
  EXPECT_EQ(Message("Client,start_s,end_s\n0,x,2\n", {.report_all_errors = true}),
            "t.csv:1: expected the header 'client,start_s,end_s', got 'Client,start_s,end_s'");
}

TEST(CsvTest, EmptyOrCommentOnlyTextNamesTheMissingHeader) {
  EXPECT_EQ(Message(""), "t.csv:1: empty file: expected the header 'client,start_s,end_s'");
  EXPECT_EQ(Message("\n  \r\n"), "t.csv:2: empty file: expected the header 'client,start_s,end_s'");
  EXPECT_EQ(Message("# just a comment\n"),
            "t.csv:1: no header line (only comments): expected the header 'client,start_s,end_s'");
  EXPECT_THAT(Message("\xEF\xBB\xBF"), HasSubstr("empty file"));
}

TEST(CsvTest, WrongCellCountNamesTheColumns) {
  EXPECT_EQ(Message("client,start_s,end_s\n0,1\n"),
            "t.csv:2: expected 3 fields (client,start_s,end_s), got 2");
  EXPECT_EQ(Message("client,start_s,end_s\n0,1,2,3\n"),
            "t.csv:2: expected 3 fields (client,start_s,end_s), got 4");
  // A trailing comma is an empty cell, not nothing.
  EXPECT_EQ(Message("client,start_s,end_s\n0,1,2,\n"),
            "t.csv:2: expected 3 fields (client,start_s,end_s), got 4");
}

TEST(CsvTest, NumericCellsAreCheckedWithTheColumnName) {
  const std::string h = "client,start_s,end_s\n";
  EXPECT_EQ(Message(h + "0,abc,2\n"), "t.csv:2: start_s 'abc' is not a finite number");
  EXPECT_EQ(Message(h + "0,1,nan\n"), "t.csv:2: end_s 'nan' is not a finite number");
  EXPECT_EQ(Message(h + "0,1,inf\n"), "t.csv:2: end_s 'inf' is not a finite number");
  EXPECT_EQ(Message(h + "0,,2\n"), "t.csv:2: start_s '' is not a finite number");
  EXPECT_EQ(Message(h + "-1,1,2\n"), "t.csv:2: client '-1' is not an integer >= 0");
  EXPECT_EQ(Message(h + "1.5,1,2\n"), "t.csv:2: client '1.5' is not an integer >= 0");
  EXPECT_EQ(Message(h + "0,1,1\n"), "t.csv:2: end_s is not after start_s");
  EXPECT_TRUE(Read(h + "0,1e-3,2.5E2\n").status.ok());
}

TEST(CsvTest, IntAcceptsNegativeNumbers) {
  std::vector<int64_t> got;
  absl::Status s = ReadCsv("a\n-7\n12\nx\n", "i.csv", std::vector<absl::string_view>{"a"},
                           [&](const CsvRow& row) -> absl::Status {
                             absl::StatusOr<int64_t> v = row.Int(0);
                             if (!v.ok()) return v.status();
                             got.push_back(*v);
                             return absl::OkStatus();
                           });
  EXPECT_EQ(s.message(), "i.csv:4: a 'x' is not an integer");
  EXPECT_EQ(got, (std::vector<int64_t>{-7, 12}));
}

TEST(CsvTest, FirstErrorStopsUnlessAllAreAskedFor) {
  const std::string text = "client,start_s,end_s\n0,x,2\n1,1,2\n2,1\n3,5,1\n";
  Parsed first = Read(text);
  EXPECT_EQ(first.status.message(), "t.csv:2: start_s 'x' is not a finite number");
  EXPECT_TRUE(first.rows.empty());

  Parsed all = Read(text, {.report_all_errors = true});
  EXPECT_EQ(all.status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(all.status.message(),
            "t.csv:2: start_s 'x' is not a finite number\n"
            "t.csv:4: expected 3 fields (client,start_s,end_s), got 2\n"
            "t.csv:5: end_s is not after start_s");
  ASSERT_EQ(all.rows.size(), 1u);  // the good row was still read
  EXPECT_EQ(all.rows[0].first, 3u);
}

TEST(CsvTest, AnErrorOfAnotherCodeStopsEvenWhenCollecting) {
  int calls = 0;
  absl::Status s = ReadCsv("a\n1\n2\n", "x.csv", std::vector<absl::string_view>{"a"},
                           [&](const CsvRow&) {
                             ++calls;
                             return absl::ResourceExhaustedError("too many");
                           },
                           {.report_all_errors = true});
  EXPECT_EQ(s.code(), absl::StatusCode::kResourceExhausted);
  EXPECT_EQ(calls, 1);
}

TEST(CsvTest, ReadCsvFileNamesThePathAndTheReason) {
  const std::string dir = ::testing::TempDir();
  const std::string path = absl::StrCat(dir, "/csv_test_", getpid(), ".csv");
  FILE* f = std::fopen(path.c_str(), "wb");
  ASSERT_NE(f, nullptr);
  std::fputs("client,start_s,end_s\r\n0,1,2\r\n0,x,3\r\n", f);
  std::fclose(f);
  absl::Status s = ReadCsvFile(
      path, kColumns, [](const CsvRow& row) -> absl::Status { return row.Double(1).status(); });
  EXPECT_EQ(s.message(), absl::StrCat(path, ":3: start_s 'x' is not a finite number"));
  std::remove(path.c_str());

  s = ReadCsvFile(path, kColumns, [](const CsvRow&) { return absl::OkStatus(); });
  EXPECT_EQ(s.code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(s.message(), absl::StrCat("cannot read ", path, ": no such file or directory"));

  s = ReadCsvFile(dir, kColumns, [](const CsvRow&) { return absl::OkStatus(); });
  EXPECT_EQ(s.code(), absl::StatusCode::kNotFound);
  EXPECT_THAT(s.message(), HasSubstr("is a directory"));
}

}  // namespace
}  // namespace fedsim
