// The one reader for fedsim's small CSV inputs: device profiles
// (sim/devices.h), participation traces (sim/participation.h) and recorded
// task durations (sim/schedule.h). Each caller names its columns and turns
// rows into values; this file owns the format and the error messages, so all
// three files read and fail the same way.
//
// The format:
//  - Lines end in "\n" or "\r\n" (a file saved on Windows reads the same).
//  - A UTF-8 byte-order mark (EF BB BF) at the very start of the text is
//    accepted and ignored: spreadsheet programs write one when they save
//    "CSV UTF-8", and the mark carries no meaning in a UTF-8 file. Anywhere
//    else those bytes are ordinary cell text.
//  - A blank line, or one whose first non-space character is '#', is skipped
//    (a comment). Comments are whole lines only: a '#' after a cell is text.
//  - Cells are separated by ','; spaces and tabs around a cell are dropped.
//    There is no quoting: a cell cannot hold a comma or a line break. (None of
//    our formats needs one.)
//  - The first line that is not skipped is the header. It must name exactly
//    the expected columns, in order.
//  - Every later line is a row with exactly as many cells as the header.
//
// Errors are InvalidArgument and read "<name>:<line>: <what is wrong>", with
// `name` the file's path (or whatever the caller passes) and `line` 1-based,
// counting every line of the text, skipped ones included, so an editor's line
// number points at the culprit:
//   trace.csv:1: expected the header 'client,start_s,end_s', got 'client,start,end'
//   trace.csv:4: expected 3 fields (client,start_s,end_s), got 2
//   trace.csv:5: start_s 'abc' is not a finite number
//   trace.csv:1: empty file: expected the header 'client,start_s,end_s'
//   trace.csv:2: no header line (only comments): expected the header '...'
//
//   absl::Status s = ReadCsvFile(path, {"client", "start_s", "end_s"},
//       [&](const CsvRow& row) -> absl::Status {
//         FEDSIM_ASSIGN_OR_RETURN(int64_t client, row.Int(0));
//         FEDSIM_ASSIGN_OR_RETURN(double start, row.Double(1));
//         if (start < 0) return row.Error("start_s is negative");
//         ...
//         return absl::OkStatus();
//       });
//
// Thread safety: pure functions; a CsvRow is valid only inside the callback
// that receives it (its cells point into the text being read).
#ifndef FEDSIM_UTIL_CSV_H_
#define FEDSIM_UTIL_CSV_H_

#include <cstddef>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "absl/functional/function_ref.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/types/span.h"

namespace fedsim {

// One data row. Its parsers and Error() put "<name>:<line>: " in front of
// the message, so a row callback never formats a location itself.
class CsvRow {
 public:
  // Made by ReadCsv; `columns` names cell i in messages.
  CsvRow(absl::string_view name, size_t line, absl::Span<const absl::string_view> columns,
         std::vector<absl::string_view> cells)
      : name_(name), line_(line), columns_(columns), cells_(std::move(cells)) {}

  // The 1-based line of the text this row came from.
  size_t line() const { return line_; }
  // The number of cells; always the number of columns.
  size_t size() const { return cells_.size(); }
  // Cell i, stripped of surrounding spaces. REQUIRES: i < size().
  absl::string_view operator[](size_t i) const { return cells_[i]; }

  // Cell i as a finite double (InvalidArgument "<column> '<cell>' is not a
  // finite number" otherwise: also for "nan" and "inf").
  // REQUIRES: i < size().
  absl::StatusOr<double> Double(size_t i) const;
  // Cell i as a signed integer ("<column> '<cell>' is not an integer").
  absl::StatusOr<int64_t> Int(size_t i) const;
  // Cell i as an integer >= 0 ("<column> '<cell>' is not an integer >= 0").
  absl::StatusOr<uint64_t> Uint(size_t i) const;

  // InvalidArgument "<name>:<line>: <what>".
  absl::Status Error(absl::string_view what) const;

 private:
  absl::string_view name_;
  size_t line_;
  absl::Span<const absl::string_view> columns_;
  std::vector<absl::string_view> cells_;
};

struct CsvOptions {
  // Report every bad row, one message line each (joined with "\n"), instead
  // of stopping at the first. A bad header still stops the reading: the rows
  // cannot be read without it. Default: false.
  bool report_all_errors = false;
};

// Reads CSV `text` (see the file comment) whose header must be exactly
// `columns`, calling `on_row` for each data row in order. A non-OK status from
// `on_row` is that row's error (build it with the row's parsers or Error());
// with options.report_all_errors, reading goes on and InvalidArgument errors
// are collected. A status of another code stops the reading at once.
// Returns OK, or InvalidArgument "<name>:<line>: ..." (see above).
// REQUIRES: columns is not empty.
absl::Status ReadCsv(absl::string_view text, absl::string_view name,
                     absl::Span<const absl::string_view> columns,
                     absl::FunctionRef<absl::Status(const CsvRow&)> on_row,
                     const CsvOptions& options = {});

// ReadCsv on the contents of the file at `path`, with `path` as the name.
// NotFound "cannot read <path>: <reason>" when the file cannot be opened or
// read, whatever the reason (in words, util/file.h: "no such file or
// directory", "permission denied", "is a directory, not a file", ...).
absl::Status ReadCsvFile(const std::string& path, absl::Span<const absl::string_view> columns,
                         absl::FunctionRef<absl::Status(const CsvRow&)> on_row,
                         const CsvOptions& options = {});

}  // namespace fedsim

#endif  // FEDSIM_UTIL_CSV_H_
