// Parsing protobuf text format with diagnostics a person can act on: every
// syntax error found, each as "file:line:col: message", and a SourceMap of
// where each field was written, for the later stages (overrides, validation)
// to point back at.
//
//   scenarios/x.textproto:12:5: no field 'lrr' in LocalTraining (did you mean 'lr'?)
//   scenarios/x.textproto:4:33: unknown value 'EXAMPELS' for field 'weighting'
//       (did you mean 'EXAMPLES'?)
//
// Works for any message type; config/scenario_file.h wraps it for Scenario.
//
// Thread safety: pure functions; may be called from any thread.
#ifndef FEDSIM_CONFIG_DIAGNOSTICS_H_
#define FEDSIM_CONFIG_DIAGNOSTICS_H_

#include <string>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "config/source_map.h"
#include "google/protobuf/message.h"

namespace fedsim {

// Parses `text` into *message (merged into what it holds; pass a cleared
// message). Unknown fields are errors. On success, *sources (when non-null)
// becomes SourceMap(display_name) with the location of every field present.
// Otherwise InvalidArgument listing every syntax error, in file order, one per
// line, each "display_name:line:col: message" ("<scenario>" when display_name
// is empty), with the parser's messages about unknown names rewritten with a
// did-you-mean. Errors about a name point at the name, not at the token after
// it. protobuf's parser stops at the first error; to report independent
// mistakes at once, a failed parse is retried field by field (each leaf field
// alone, with its enclosing `name {` ... `}`), so one error per broken field
// is found, not only the first. *message is unspecified after a failure.
// A UTF-8 byte-order mark at the start of `text` is skipped (util/file.h);
// lines and columns then count from after it, as an editor shows them.
absl::Status ParseTextWithSources(const std::string& text, const std::string& display_name,
                                  google::protobuf::Message* message, SourceMap* sources);

// True when `text` holds nothing but blank lines and '#' comment lines (after
// a byte-order mark): a file that says nothing, which loaders report as empty
// rather than as whatever its defaults lack.
bool IsBlankText(absl::string_view text);

}  // namespace fedsim

#endif  // FEDSIM_CONFIG_DIAGNOSTICS_H_
