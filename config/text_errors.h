// Internal to config/: turning the protobuf text parser's messages into ours.
// Shared by the file parser (diagnostics.h) and the --set language
// (overrides.h) so that a misspelt field or enum value reads the same in a
// file and on the command line:
//
//   no field 'lrr' in LocalTraining (did you mean 'lr'?)
//   unknown value 'EXAMPELS' for field 'weighting' (did you mean 'EXAMPLES'?)
//
// Thread safety: free functions without shared state; CollectingErrors is a
// value, not thread-safe.
#ifndef FEDSIM_CONFIG_TEXT_ERRORS_H_
#define FEDSIM_CONFIG_TEXT_ERRORS_H_

#include <string>
#include <string_view>
#include <vector>

#include "google/protobuf/descriptor.h"
#include "google/protobuf/io/tokenizer.h"

namespace fedsim::config_internal {

// One error of the protobuf tokenizer or text parser.
struct RawError {
  int line = 0;    // 0-based, as the protobuf tokenizer reports it
  int column = 0;  // 0-based, tabs expanded to multiples of 8
  std::string message;
};

// Keeps every error (warnings are dropped).
class CollectingErrors : public google::protobuf::io::ErrorCollector {
 public:
  void AddError(int line, google::protobuf::io::ColumnNumber column,
                const std::string& message) override {
    errors.push_back({line, column, message});
  }
  void AddWarning(int, google::protobuf::io::ColumnNumber, const std::string&) override {}
  std::vector<RawError> errors;
};

// "no field '<name>' in <Message>" with a did-you-mean among d's fields, or
// the list of its fields when nothing is close.
std::string NoFieldMessage(std::string_view name, const google::protobuf::Descriptor* d);

// The value names of an enum, in declaration order.
std::vector<std::string> EnumValueNames(const google::protobuf::EnumDescriptor* e);

// "unknown value '<value>' for field '<field>'" with a did-you-mean among
// `values`, or the list of them when nothing is close.
std::string BadEnumMessage(const std::string& value, const std::string& field,
                           const std::vector<std::string>& values);

// Matches `<prefix>A<middle>B"...` and extracts A and B (the parser quotes
// names: `Message type "A" has no field named "b".`).
bool MatchTwoQuoted(const std::string& msg, std::string_view prefix, std::string_view middle,
                    std::string* first, std::string* second);

// Rewrites the parser's messages about unknown fields and enum values into
// ours (above) and explains an unexpected end of file; other messages pass
// unchanged. `root` is the type being parsed: enum values are looked up among
// the enum fields reachable from it, since the parser names only the field.
std::string RewriteParserMessage(const std::string& msg, const google::protobuf::Descriptor* root);

}  // namespace fedsim::config_internal

#endif  // FEDSIM_CONFIG_TEXT_ERRORS_H_
