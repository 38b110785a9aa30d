#include "util/csv.h"

#include <algorithm>
#include <cmath>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "util/file.h"

namespace fedsim {
absl::Status CsvRow::Error(absl::string_view what) const {
  return absl::InvalidArgumentError(absl::StrCat(name_, ":", line_, ": ", what));
}

absl::StatusOr<double> CsvRow::Double(size_t i) const {
  double v = 0;
  if (!absl::SimpleAtod(cells_[i], &v) || !std::isfinite(v)) {
    return Error(absl::StrCat(columns_[i], " '", cells_[i], "' is not a finite number"));
  }
  return v;
}

absl::StatusOr<int64_t> CsvRow::Int(size_t i) const {
  int64_t v = 0;
  if (!absl::SimpleAtoi(cells_[i], &v)) {
    return Error(absl::StrCat(columns_[i], " '", cells_[i], "' is not an integer"));
  }
  return v;
}

absl::StatusOr<uint64_t> CsvRow::Uint(size_t i) const {
  uint64_t v = 0;
  // SimpleAtoi into an unsigned type already refuses a leading '-'.
  if (!absl::SimpleAtoi(cells_[i], &v)) {
    return Error(absl::StrCat(columns_[i], " '", cells_[i], "' is not an integer >= 0"));
  }
  return v;
}

absl::Status ReadCsv(absl::string_view text, absl::string_view name,
                     absl::Span<const absl::string_view> columns,
                     absl::FunctionRef<absl::Status(const CsvRow&)> on_row,
                     const CsvOptions& options) {
  text = SkipByteOrderMark(text);
  const std::string header = absl::StrJoin(columns, ",");
  auto error = [&](size_t line, absl::string_view what) {
    return absl::InvalidArgumentError(absl::StrCat(name, ":", line, ": ", what));
  };

  std::vector<std::string> errors;
  bool saw_header = false;
  bool saw_comment = false;
  size_t line_no = 0;
  size_t start = 0;
  while (start < text.size()) {
    size_t end = text.find('\n', start);
    if (end == absl::string_view::npos) end = text.size();
    // StripAsciiWhitespace also drops the '\r' of a CRLF line end.
    const absl::string_view line = absl::StripAsciiWhitespace(text.substr(start, end - start));
    start = end + 1;
    ++line_no;
    if (line.empty()) continue;
    if (line[0] == '#') {
      saw_comment = true;
      continue;
    }
    std::vector<absl::string_view> cells = absl::StrSplit(line, ',');
    for (absl::string_view& c : cells) c = absl::StripAsciiWhitespace(c);
    if (!saw_header) {
      if (cells.size() != columns.size() ||
          !std::equal(cells.begin(), cells.end(), columns.begin())) {
        return error(line_no, absl::StrCat("expected the header '", header, "', got '", line, "'"));
      }
      saw_header = true;
      continue;
    }
    absl::Status s;
    if (cells.size() != columns.size()) {
      s = error(line_no, absl::StrCat("expected ", columns.size(), " fields (", header, "), got ",
                                      cells.size()));
    } else {
      s = on_row(CsvRow(name, line_no, columns, std::move(cells)));
    }
    if (s.ok()) continue;
    if (!options.report_all_errors || s.code() != absl::StatusCode::kInvalidArgument) return s;
    errors.emplace_back(s.message());
  }
  if (!saw_header) {
    return error(std::max<size_t>(line_no, 1),
                 absl::StrCat(saw_comment ? "no header line (only comments)" : "empty file",
                              ": expected the header '", header, "'"));
  }
  if (errors.empty()) return absl::OkStatus();
  return absl::InvalidArgumentError(absl::StrJoin(errors, "\n"));
}

absl::Status ReadCsvFile(const std::string& path, absl::Span<const absl::string_view> columns,
                         absl::FunctionRef<absl::Status(const CsvRow&)> on_row,
                         const CsvOptions& options) {
  absl::StatusOr<std::string> text = ReadFileToString(path);
  // One code for every file that cannot be read, so that callers can put the
  // scenario field in front of exactly these messages.
  if (!text.ok()) return absl::NotFoundError(text.status().message());
  return ReadCsv(*text, path, columns, on_row, options);
}

}  // namespace fedsim
