#include "config/diagnostics.h"

#include <algorithm>
#include <cctype>
#include <memory>
#include <tuple>
#include <utility>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "config/text_errors.h"
#include "google/protobuf/io/tokenizer.h"
#include "google/protobuf/io/zero_copy_stream_impl_lite.h"
#include "google/protobuf/text_format.h"
#include "util/file.h"

namespace fedsim {
namespace {

namespace pb = google::protobuf;
using config_internal::CollectingErrors;
using config_internal::RawError;
using config_internal::RewriteParserMessage;

// ------------------------------------------------------------ error text

// The text split into lines (without the '\n'), and each line's byte offset.
struct Lines {
  explicit Lines(const std::string& text) {
    size_t start = 0;
    while (true) {
      size_t nl = text.find('\n', start);
      offsets.push_back(start);
      if (nl == std::string::npos) {
        lines.push_back(text.substr(start));
        break;
      }
      lines.push_back(text.substr(start, nl - start));
      start = nl + 1;
    }
  }
  // The tokenizer advances tabs to the next multiple of 8; editors count
  // bytes. Converts a tokenizer column to a byte index into the line.
  size_t ByteIndex(int line, int column) const {
    if (line < 0 || line >= static_cast<int>(lines.size())) return 0;
    const std::string& s = lines[line];
    int col = 0;
    size_t i = 0;
    while (i < s.size() && col < column) {
      col += s[i] == '\t' ? 8 - col % 8 : 1;
      ++i;
    }
    return i;
  }
  std::vector<std::string> lines;
  std::vector<size_t> offsets;
};

// The quoted words of a parser message: `Unknown enumeration value of "X"
// for field "f".` -> X, f.
std::vector<std::string> QuotedWords(const std::string& message) {
  std::vector<std::string> words;
  size_t q = message.find('"');
  while (q != std::string::npos) {
    size_t q2 = message.find('"', q + 1);
    if (q2 == std::string::npos) break;
    if (q2 > q + 1) words.push_back(message.substr(q + 1, q2 - q - 1));
    q = message.find('"', q2 + 1);
  }
  return words;
}

bool IsName(const std::string& word) {
  return !word.empty() && std::all_of(word.begin(), word.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '.';
  });
}

// Where the error's message should point. The parser reports errors about a
// name at the token after it (the ':', the value, or the next line's first
// token when the name ends its line); editors want the name. When one of the
// quoted words of the message ends just before the error's position (spaces
// between allowed; for a name, also blank lines and comments), the position
// moves to where that word starts. Returns (0-based line, byte index).
std::pair<int, size_t> ErrorPosition(const Lines& lines, const RawError& e) {
  size_t byte = lines.ByteIndex(e.line, e.column);
  if (e.line < 0 || e.line >= static_cast<int>(lines.lines.size())) return {e.line, byte};
  const std::vector<std::string> words = QuotedWords(e.message);
  auto ends_with_word = [&](const std::string& line, size_t end, bool names_only, size_t* start) {
    while (end > 0 && (line[end - 1] == ' ' || line[end - 1] == '\t')) --end;
    for (const std::string& word : words) {
      if (names_only && !IsName(word)) continue;
      if (word.size() <= end && line.compare(end - word.size(), word.size(), word) == 0) {
        *start = end - word.size();
        return true;
      }
    }
    return false;
  };
  const std::string& line = lines.lines[e.line];
  const size_t end = std::min(byte, line.size());
  size_t start = 0;
  if (ends_with_word(line, end, false, &start)) return {e.line, start};
  // Only blanks before the error on its line: the name may end an earlier line.
  if (line.find_first_not_of(" \t\r") < end) return {e.line, byte};
  for (int l = e.line - 1; l >= 0; --l) {
    std::string text = lines.lines[l];
    if (size_t hash = text.find('#'); hash != std::string::npos) text.resize(hash);
    if (text.find_first_not_of(" \t\r") == std::string::npos) continue;
    while (!text.empty() && (text.back() == '\r')) text.pop_back();
    if (ends_with_word(text, text.size(), true, &start)) return {l, start};
    break;
  }
  return {e.line, byte};
}

std::string FormatError(const std::string& file, const Lines& lines, const RawError& e,
                        const pb::Descriptor* root) {
  const auto [line, byte] = ErrorPosition(lines, e);
  return absl::StrCat(file, ":", line + 1, ":", byte + 1, ": ",
                      RewriteParserMessage(e.message, root));
}

// ------------------------------------------------------------ recovery
//
// protobuf's text parser stops at the first error. To report every mistake at
// once, a failed parse is retried field by field: the text is tokenized into a
// tree of fields, and each leaf field is parsed alone, in a copy of the text
// where everything but the leaf and the `name {` ... `}` of its enclosing
// messages is blanked out (newlines kept, so positions stay exact).

struct Token {
  int line = 0;
  int column = 0;
  int end_column = 0;
  std::string text;
  pb::io::Tokenizer::TokenType type = pb::io::Tokenizer::TYPE_START;
};

struct FieldNode {
  size_t start = 0;  // first token
  size_t end = 0;    // one past the last token
  long open = -1;    // token index of '{' or '<' for message fields
  long close = -1;   // token index of the matching '}' or '>'
  std::vector<FieldNode> children;
};

class FieldTreeBuilder {
 public:
  explicit FieldTreeBuilder(const std::vector<Token>& tokens) : t_(tokens) {}

  // False when the braces do not balance (then no recovery is attempted).
  bool Build(std::vector<FieldNode>* roots) {
    size_t pos = 0;
    if (!Fields(pos, "", roots)) return false;
    return pos == t_.size();
  }

 private:
  bool Is(size_t pos, std::string_view s) const { return pos < t_.size() && t_[pos].text == s; }
  bool IsCloser(size_t pos) const { return Is(pos, "}") || Is(pos, ">") || Is(pos, "]"); }

  bool Fields(size_t& pos, std::string_view closer, std::vector<FieldNode>* out) {
    while (pos < t_.size()) {
      if (!closer.empty() && Is(pos, closer)) return true;
      if (IsCloser(pos)) return false;
      FieldNode node;
      node.start = pos;
      if (Is(pos, "{") || Is(pos, "<")) return false;
      if (t_[pos].type == pb::io::Tokenizer::TYPE_IDENTIFIER) {
        ++pos;
      } else if (Is(pos, "[")) {  // [extension.name]
        while (pos < t_.size() && !Is(pos, "]")) ++pos;
        if (pos == t_.size()) return false;
        ++pos;
      } else {  // a stray token: a leaf of its own
        ++pos;
        node.end = pos;
        out->push_back(std::move(node));
        continue;
      }
      const bool colon = Is(pos, ":");
      if (colon) ++pos;
      if (Is(pos, "{") || Is(pos, "<")) {
        node.open = static_cast<long>(pos);
        std::string_view inner_closer = Is(pos, "{") ? "}" : ">";
        ++pos;
        if (!Fields(pos, inner_closer, &node.children)) return false;
        if (pos == t_.size()) return false;
        node.close = static_cast<long>(pos);
        ++pos;
      } else if (Is(pos, "[")) {
        if (!SkipBalanced(pos)) return false;
      } else if (pos < t_.size() && !IsCloser(pos)) {
        // A scalar value: [-] token, then adjacent strings concatenate.
        if (colon || t_[pos].type != pb::io::Tokenizer::TYPE_IDENTIFIER) {
          if (Is(pos, "-")) ++pos;
          if (pos < t_.size() && !IsCloser(pos)) {
            const bool is_string = t_[pos].type == pb::io::Tokenizer::TYPE_STRING;
            ++pos;
            while (is_string && pos < t_.size() && t_[pos].type == pb::io::Tokenizer::TYPE_STRING) {
              ++pos;
            }
          }
        }
      }
      if (Is(pos, ";") || Is(pos, ",")) ++pos;
      node.end = pos;
      out->push_back(std::move(node));
    }
    return closer.empty();
  }

  bool SkipBalanced(size_t& pos) {
    int depth = 0;
    do {
      if (Is(pos, "[") || Is(pos, "{") || Is(pos, "<")) ++depth;
      if (Is(pos, "]") || Is(pos, "}") || Is(pos, ">")) --depth;
      ++pos;
    } while (pos < t_.size() && depth > 0);
    return depth == 0;
  }

  const std::vector<Token>& t_;
};

void CollectLeaves(const FieldNode& node, std::vector<const FieldNode*>& path,
                   std::vector<std::vector<const FieldNode*>>* leaves) {
  path.push_back(&node);
  if (node.children.empty()) {
    leaves->push_back(path);
  } else {
    for (const FieldNode& c : node.children) CollectLeaves(c, path, leaves);
  }
  path.pop_back();
}

// Parses each leaf field alone and returns the errors found that way.
std::vector<RawError> RecoverErrors(const std::string& text, const Lines& lines,
                                    const pb::Message& prototype) {
  pb::io::ArrayInputStream input(text.data(), static_cast<int>(text.size()));
  CollectingErrors tokenizer_errors;
  pb::io::Tokenizer tokenizer(&input, &tokenizer_errors);
  tokenizer.set_comment_style(pb::io::Tokenizer::SH_COMMENT_STYLE);
  tokenizer.set_allow_f_after_float(true);
  std::vector<Token> tokens;
  while (tokenizer.Next()) {
    const auto& c = tokenizer.current();
    tokens.push_back({c.line, c.column, c.end_column, c.text, c.type});
  }
  if (!tokenizer_errors.errors.empty()) return tokenizer_errors.errors;

  std::vector<FieldNode> roots;
  if (!FieldTreeBuilder(tokens).Build(&roots)) return {};
  std::vector<std::vector<const FieldNode*>> leaves;
  std::vector<const FieldNode*> path;
  for (const FieldNode& r : roots) CollectLeaves(r, path, &leaves);
  if (leaves.size() > 2000) return {};  // not worth it on huge files

  auto keep_token = [&](std::string& masked, size_t i) {
    const Token& t = tokens[i];
    size_t b = lines.offsets[t.line] + lines.ByteIndex(t.line, t.column);
    size_t e = lines.offsets[t.line] + lines.ByteIndex(t.line, t.end_column);
    for (size_t k = b; k < e && k < text.size(); ++k) masked[k] = text[k];
  };
  std::vector<RawError> errors;
  for (const auto& leaf_path : leaves) {
    std::string masked = text;
    for (char& ch : masked) {
      if (ch != '\n' && ch != '\t' && ch != '\r') ch = ' ';
    }
    for (size_t d = 0; d + 1 < leaf_path.size(); ++d) {
      const FieldNode* a = leaf_path[d];
      for (size_t i = a->start; i <= static_cast<size_t>(a->open); ++i) keep_token(masked, i);
      keep_token(masked, static_cast<size_t>(a->close));
    }
    const FieldNode* leaf = leaf_path.back();
    for (size_t i = leaf->start; i < leaf->end; ++i) keep_token(masked, i);
    std::unique_ptr<pb::Message> scratch(prototype.New());
    pb::TextFormat::Parser parser;
    CollectingErrors collector;
    parser.RecordErrorsTo(&collector);
    if (!parser.ParseFromString(masked, scratch.get())) {
      for (RawError& e : collector.errors) errors.push_back(std::move(e));
    }
  }
  return errors;
}

// ------------------------------------------------------------ source map

void RecordLocations(const pb::Message& m, const pb::TextFormat::ParseInfoTree* tree,
                     const std::string& prefix, SourceMap* sources, const Lines& lines) {
  if (tree == nullptr) return;
  const pb::Reflection* r = m.GetReflection();
  std::vector<const pb::FieldDescriptor*> fields;
  r->ListFields(m, &fields);
  auto record = [&](const std::string& path, pb::TextFormat::ParseLocation loc) {
    if (loc.line < 0) return;
    const size_t byte = lines.ByteIndex(loc.line, loc.column);
    sources->AddParsed(path, {loc.line + 1, static_cast<int>(byte) + 1});
  };
  for (const pb::FieldDescriptor* f : fields) {
    const std::string path = prefix.empty() ? f->name() : absl::StrCat(prefix, ".", f->name());
    if (f->is_repeated()) {
      const int n = r->FieldSize(m, f);
      for (int i = 0; i < n; ++i) {
        const std::string ip = absl::StrCat(path, "[", i, "]");
        record(ip, tree->GetLocation(f, i));
        if (i == 0) record(path, tree->GetLocation(f, i));
        if (f->cpp_type() == pb::FieldDescriptor::CPPTYPE_MESSAGE) {
          RecordLocations(r->GetRepeatedMessage(m, f, i), tree->GetTreeForNested(f, i), ip, sources,
                          lines);
        }
      }
    } else {
      record(path, tree->GetLocation(f, -1));
      if (f->cpp_type() == pb::FieldDescriptor::CPPTYPE_MESSAGE) {
        RecordLocations(r->GetMessage(m, f), tree->GetTreeForNested(f, -1), path, sources, lines);
      }
    }
  }
}

}  // namespace

bool IsBlankText(absl::string_view text) {
  for (absl::string_view line : absl::StrSplit(SkipByteOrderMark(text), '\n')) {
    line = absl::StripLeadingAsciiWhitespace(line);
    if (!line.empty() && line[0] != '#') return false;
  }
  return true;
}

absl::Status ParseTextWithSources(const std::string& text, const std::string& display_name,
                                  pb::Message* message, SourceMap* sources) {
  // protobuf's tokenizer rejects a byte-order mark ("non ascii codepoint
  // 239"); editors do not show one, so lines and columns count from after it.
  if (SkipByteOrderMark(text).size() != text.size()) {
    return ParseTextWithSources(std::string(SkipByteOrderMark(text)), display_name, message,
                                sources);
  }
  const std::string file = FileOrPlaceholder(display_name);
  const Lines lines(text);
  pb::TextFormat::ParseInfoTree tree;
  pb::TextFormat::Parser parser;
  CollectingErrors collector;
  parser.RecordErrorsTo(&collector);
  parser.WriteLocationsTo(&tree);
  if (parser.ParseFromString(text, message)) {
    if (sources != nullptr) {
      *sources = SourceMap(display_name);
      RecordLocations(*message, &tree, "", sources, lines);
    }
    return absl::OkStatus();
  }
  const pb::Descriptor* root = message->GetDescriptor();
  std::vector<RawError> errors = collector.errors;
  for (RawError& e : RecoverErrors(text, lines, *message)) errors.push_back(std::move(e));
  std::vector<std::tuple<int, size_t, std::string>> formatted;
  for (const RawError& e : errors) {
    const auto [line, byte] = ErrorPosition(lines, e);
    formatted.emplace_back(line, byte, FormatError(file, lines, e, root));
  }
  std::sort(formatted.begin(), formatted.end());
  std::vector<std::string> messages;
  for (auto& [line, col, s] : formatted) {
    if (messages.empty() || messages.back() != s) messages.push_back(s);
  }
  if (messages.empty()) messages.push_back(file + ": could not be parsed");
  return absl::InvalidArgumentError(absl::StrJoin(messages, "\n"));
}

}  // namespace fedsim
