#include "sim/scenario.h"

#include <algorithm>
#include <cmath>
#include <fstream>
#include <memory>
#include <sstream>
#include <tuple>
#include <utility>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "google/protobuf/descriptor.h"
#include "google/protobuf/io/tokenizer.h"
#include "google/protobuf/io/zero_copy_stream_impl_lite.h"
#include "google/protobuf/text_format.h"
#include "util/hash.h"
#include "util/spell.h"

namespace fedsim {
namespace {

namespace pb = google::protobuf;

// ------------------------------------------------------------ error text

struct RawError {
  int line = 0;    // 0-based, as the protobuf tokenizer reports it
  int column = 0;  // 0-based, tabs expanded to multiples of 8
  std::string message;
};

class CollectingErrors : public pb::io::ErrorCollector {
 public:
  void AddError(int line, pb::io::ColumnNumber column, const std::string& message) override {
    errors.push_back({line, column, message});
  }
  void AddWarning(int, pb::io::ColumnNumber, const std::string&) override {}
  std::vector<RawError> errors;
};

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

std::vector<std::string_view> FieldNames(const pb::Descriptor* d) {
  std::vector<std::string_view> names;
  for (int i = 0; i < d->field_count(); ++i) names.push_back(d->field(i)->name());
  return names;
}

std::string NoFieldMessage(std::string_view name, const pb::Descriptor* d) {
  std::vector<std::string_view> names = FieldNames(d);
  std::string hint = DidYouMean(name, names);
  if (hint.empty()) {
    std::vector<std::string> list(names.begin(), names.end());
    hint = absl::StrCat(" (its fields: ", absl::StrJoin(list, ", "), ")");
  }
  return absl::StrCat("no field '", std::string(name), "' in ", d->name(), hint);
}

// The values of every enum field named `field` reachable from Scenario (the
// parser's message names the field but not its message).
std::vector<std::string> EnumValuesOfField(const std::string& field) {
  std::vector<std::string> out;
  std::vector<const pb::Descriptor*> todo = {config::Scenario::descriptor()};
  std::set<const pb::Descriptor*> seen;
  while (!todo.empty()) {
    const pb::Descriptor* d = todo.back();
    todo.pop_back();
    if (!seen.insert(d).second) continue;
    for (int i = 0; i < d->field_count(); ++i) {
      const pb::FieldDescriptor* f = d->field(i);
      if (f->message_type() != nullptr) todo.push_back(f->message_type());
      if (f->enum_type() != nullptr && f->name() == field) {
        for (int v = 0; v < f->enum_type()->value_count(); ++v) {
          const std::string& name = f->enum_type()->value(v)->name();
          if (std::find(out.begin(), out.end(), name) == out.end()) out.push_back(name);
        }
      }
    }
  }
  return out;
}

std::string BadEnumMessage(const std::string& value, const std::string& field,
                           const std::vector<std::string>& values) {
  std::vector<std::string_view> views(values.begin(), values.end());
  std::string hint = DidYouMean(value, views);
  if (hint.empty() && !values.empty()) {
    hint = absl::StrCat(" (one of: ", absl::StrJoin(values, ", "), ")");
  }
  return absl::StrCat("unknown value '", value, "' for field '", field, "'", hint);
}

// Extracts the quoted names of `Message type "A" has no field named "b".`
// and `Unknown enumeration value of "X" for field "f".`.
bool MatchTwoQuoted(const std::string& msg, std::string_view prefix, std::string_view middle,
                    std::string* first, std::string* second) {
  if (msg.rfind(prefix, 0) != 0) return false;
  size_t a = prefix.size();
  size_t a_end = msg.find('"', a);
  if (a_end == std::string::npos) return false;
  if (msg.compare(a_end, middle.size(), middle) != 0) return false;
  size_t b = a_end + middle.size();
  size_t b_end = msg.find('"', b);
  if (b_end == std::string::npos) return false;
  *first = msg.substr(a, a_end - a);
  *second = msg.substr(b, b_end - b);
  return true;
}

// Rewrites the parser's messages for unknown names into ours, with a
// did-you-mean. `enum_values` (optional) lists the enum's values when known.
std::string Rewrite(const std::string& msg) {
  std::string a, b;
  if (MatchTwoQuoted(msg, "Message type \"", "\" has no field named \"", &a, &b)) {
    const pb::Descriptor* d = pb::DescriptorPool::generated_pool()->FindMessageTypeByName(a);
    if (d != nullptr) return NoFieldMessage(b, d);
  }
  if (MatchTwoQuoted(msg, "Unknown enumeration value of \"", "\" for field \"", &a, &b)) {
    return BadEnumMessage(a, b, EnumValuesOfField(b));
  }
  if (absl::EndsWith(msg, "got: ")) return msg + "end of file (is a '}' missing?)";
  return msg;
}

// The parser reports errors about a name at the token after it (the ':' or
// the value); editors want the name. When one of the quoted words of the
// message ends just before the error's position (spaces between allowed),
// move the position to where that word starts.
size_t NameStart(const Lines& lines, const RawError& e, size_t byte_index) {
  const std::string& line = lines.lines[e.line];
  size_t end = std::min(byte_index, line.size());
  while (end > 0 && (line[end - 1] == ' ' || line[end - 1] == '\t')) --end;
  size_t q = e.message.find('"');
  while (q != std::string::npos) {
    size_t q2 = e.message.find('"', q + 1);
    if (q2 == std::string::npos) break;
    const std::string word = e.message.substr(q + 1, q2 - q - 1);
    if (!word.empty() && word.size() <= end &&
        line.compare(end - word.size(), word.size(), word) == 0) {
      return end - word.size();
    }
    q = e.message.find('"', q2 + 1);
  }
  return byte_index;
}

std::string FormatError(const std::string& file, const Lines& lines, const RawError& e) {
  size_t byte = lines.ByteIndex(e.line, e.column);
  if (e.line >= 0 && e.line < static_cast<int>(lines.lines.size())) {
    byte = NameStart(lines, e, byte);
  }
  return absl::StrCat(file, ":", e.line + 1, ":", byte + 1, ": ", Rewrite(e.message));
}

std::string FileOrPlaceholder(const std::string& file) {
  return file.empty() ? std::string("<scenario>") : file;
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
std::vector<RawError> RecoverErrors(const std::string& text, const Lines& lines) {
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
    config::Scenario scratch;
    pb::TextFormat::Parser parser;
    CollectingErrors collector;
    parser.RecordErrorsTo(&collector);
    if (!parser.ParseFromString(masked, &scratch)) {
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

// ------------------------------------------------------------ overrides

std::string Trim(std::string_view s) {
  return std::string(absl::StripAsciiWhitespace(absl::string_view(s.data(), s.size())));
}

// What a value of this field looks like, for error messages.
std::string ExpectedValue(const pb::FieldDescriptor* f) {
  using F = pb::FieldDescriptor;
  std::string what;
  switch (f->cpp_type()) {
    case F::CPPTYPE_INT32:
    case F::CPPTYPE_INT64:
      what = "an integer";
      break;
    case F::CPPTYPE_UINT32:
    case F::CPPTYPE_UINT64:
      what = "a non-negative integer";
      break;
    case F::CPPTYPE_DOUBLE:
    case F::CPPTYPE_FLOAT:
      what = "a number";
      break;
    case F::CPPTYPE_BOOL:
      what = "true or false";
      break;
    case F::CPPTYPE_STRING:
      what = "a string";
      break;
    case F::CPPTYPE_ENUM: {
      std::vector<std::string> names;
      for (int i = 0; i < f->enum_type()->value_count(); ++i) {
        names.push_back(f->enum_type()->value(i)->name());
      }
      what = absl::StrCat("one of ", absl::StrJoin(names, ", "));
      break;
    }
    case F::CPPTYPE_MESSAGE:
      what = absl::StrCat("a ", f->message_type()->name(), " in text format, e.g. {...}");
      break;
  }
  if (f->is_repeated()) what = absl::StrCat("a list of ", what, " in [...]");
  return what;
}

bool IsQuoted(const std::string& v) { return !v.empty() && (v[0] == '"' || v[0] == '\''); }

// Turns the user's value into text format for `field: <value>`.
std::string ValueText(const pb::FieldDescriptor* f, const std::string& v, bool single) {
  using F = pb::FieldDescriptor;
  auto element = [&](const std::string& e) {
    if (f->cpp_type() == F::CPPTYPE_STRING && !IsQuoted(e)) {
      return absl::StrCat("\"", absl::CEscape(e), "\"");
    }
    if (f->cpp_type() == F::CPPTYPE_MESSAGE && !e.empty() && e[0] != '{' && e[0] != '<') {
      return absl::StrCat("{ ", e, " }");
    }
    return e;
  };
  if (f->is_repeated() && !single) {
    if (!v.empty() && v[0] == '[') return v;
    if (f->cpp_type() == F::CPPTYPE_MESSAGE || f->cpp_type() == F::CPPTYPE_STRING) {
      return absl::StrCat("[", element(v), "]");
    }
    return absl::StrCat("[", v, "]");
  }
  return element(v);
}

// Copies element 0 of repeated field f of `from` into `to` at `index` (or
// appends when index == size).
void CopyRepeatedElement(const pb::Message& from, const pb::FieldDescriptor* f, pb::Message* to,
                         int index) {
  using F = pb::FieldDescriptor;
  const pb::Reflection* r = from.GetReflection();
  const bool add = index == r->FieldSize(*to, f);
  switch (f->cpp_type()) {
#define FEDSIM_COPY_(CPP, Name)                \
  case F::CPPTYPE_##CPP: {                     \
    auto v = r->GetRepeated##Name(from, f, 0); \
    if (add) {                                 \
      r->Add##Name(to, f, v);                  \
    } else {                                   \
      r->SetRepeated##Name(to, f, index, v);   \
    }                                          \
    break;                                     \
  }
    FEDSIM_COPY_(INT32, Int32)
    FEDSIM_COPY_(INT64, Int64)
    FEDSIM_COPY_(UINT32, UInt32)
    FEDSIM_COPY_(UINT64, UInt64)
    FEDSIM_COPY_(DOUBLE, Double)
    FEDSIM_COPY_(FLOAT, Float)
    FEDSIM_COPY_(BOOL, Bool)
    FEDSIM_COPY_(STRING, String)
    FEDSIM_COPY_(ENUM, Enum)
#undef FEDSIM_COPY_
    case F::CPPTYPE_MESSAGE: {
      pb::Message* dst = add ? r->AddMessage(to, f) : r->MutableRepeatedMessage(to, f, index);
      dst->CopyFrom(r->GetRepeatedMessage(from, f, 0));
      break;
    }
  }
}

// Checks that the fragment starts like `a.b[3].c=`.
bool LooksLikeOverrideStart(const std::string& s) {
  size_t i = 0;
  while (i < s.size() && s[i] == ' ') ++i;
  bool need_name = true;
  while (i < s.size()) {
    if (need_name) {
      if (!(std::isalpha(static_cast<unsigned char>(s[i])) || s[i] == '_')) return false;
      while (i < s.size() && (std::isalnum(static_cast<unsigned char>(s[i])) || s[i] == '_')) ++i;
      need_name = false;
      if (i < s.size() && s[i] == '[') {
        ++i;
        if (i >= s.size() || !std::isdigit(static_cast<unsigned char>(s[i]))) return false;
        while (i < s.size() && std::isdigit(static_cast<unsigned char>(s[i]))) ++i;
        if (i >= s.size() || s[i] != ']') return false;
        ++i;
      }
    } else if (s[i] == '.') {
      need_name = true;
      ++i;
    } else {
      while (i < s.size() && s[i] == ' ') ++i;
      return i < s.size() && s[i] == '=';
    }
  }
  return false;
}

// Depth of unclosed brackets in the value part (quotes respected).
int OpenBrackets(const std::string& s) {
  size_t eq = s.find('=');
  int depth = 0;
  char quote = 0;
  for (size_t i = eq == std::string::npos ? 0 : eq + 1; i < s.size(); ++i) {
    char c = s[i];
    if (quote != 0) {
      if (c == '\\') {
        ++i;
      } else if (c == quote) {
        quote = 0;
      }
      continue;
    }
    if (c == '"' || c == '\'') quote = c;
    if (c == '[' || c == '{' || c == '<') ++depth;
    if (c == ']' || c == '}' || c == '>') --depth;
  }
  return depth + (quote != 0 ? 1 : 0);
}

// ------------------------------------------------------------ defaults

void FillDeclaredDefaults(pb::Message* m) {
  using F = pb::FieldDescriptor;
  const pb::Descriptor* d = m->GetDescriptor();
  const pb::Reflection* r = m->GetReflection();
  for (int i = 0; i < d->field_count(); ++i) {
    const F* f = d->field(i);
    if (f->is_repeated()) {
      if (f->cpp_type() == F::CPPTYPE_MESSAGE) {
        for (int k = 0; k < r->FieldSize(*m, f); ++k) {
          FillDeclaredDefaults(r->MutableRepeatedMessage(m, f, k));
        }
      }
      continue;
    }
    if (f->cpp_type() == F::CPPTYPE_MESSAGE) {
      if (r->HasField(*m, f)) FillDeclaredDefaults(r->MutableMessage(m, f));
      continue;
    }
    // A scalar member of a oneof is a choice, never a default.
    if (f->containing_oneof() != nullptr) continue;
    if (r->HasField(*m, f) || !f->has_default_value()) continue;
    switch (f->cpp_type()) {
      case F::CPPTYPE_INT32:
        r->SetInt32(m, f, f->default_value_int32());
        break;
      case F::CPPTYPE_INT64:
        r->SetInt64(m, f, f->default_value_int64());
        break;
      case F::CPPTYPE_UINT32:
        r->SetUInt32(m, f, f->default_value_uint32());
        break;
      case F::CPPTYPE_UINT64:
        r->SetUInt64(m, f, f->default_value_uint64());
        break;
      case F::CPPTYPE_DOUBLE:
        r->SetDouble(m, f, f->default_value_double());
        break;
      case F::CPPTYPE_FLOAT:
        r->SetFloat(m, f, f->default_value_float());
        break;
      case F::CPPTYPE_BOOL:
        r->SetBool(m, f, f->default_value_bool());
        break;
      case F::CPPTYPE_STRING:
        r->SetString(m, f, f->default_value_string());
        break;
      case F::CPPTYPE_ENUM:
        r->SetEnum(m, f, f->default_value_enum());
        break;
      case F::CPPTYPE_MESSAGE:
        break;
    }
  }
}

void DefaultDistribution(config::Distribution* d, double constant) {
  if (d->kind_case() == config::Distribution::KIND_NOT_SET) d->set_constant(constant);
}

void DefaultStaleness(config::Staleness* s) {
  if (s->kind_case() == config::Staleness::KIND_NOT_SET) s->mutable_polynomial();
}

// ------------------------------------------------------------ validation

class Problems {
 public:
  explicit Problems(const SourceMap* sources) : sources_(sources) {}

  void Add(const std::string& path, const std::string& message) {
    std::string where = sources_ != nullptr ? sources_->Describe(path) : SourceMap().Describe(path);
    problems_.push_back({Locate(path), absl::StrCat(where, ": ", message)});
  }

  absl::Status ToStatus() {
    if (problems_.empty()) return absl::OkStatus();
    // File order first (by line and column), then the ones without a place.
    std::stable_sort(problems_.begin(), problems_.end(),
                     [](const auto& a, const auto& b) { return a.first < b.first; });
    std::vector<std::string> lines;
    for (auto& p : problems_) lines.push_back(p.second);
    return absl::InvalidArgumentError(absl::StrJoin(lines, "\n"));
  }

 private:
  std::pair<int, int> Locate(const std::string& path) const {
    if (sources_ == nullptr) return {1 << 30, 0};
    auto loc = sources_->Find(path);
    if (!loc.has_value()) return {1 << 30, 0};
    return {loc->line, loc->column};
  }

  const SourceMap* sources_;
  std::vector<std::pair<std::pair<int, int>, std::string>> problems_;
};

std::string Num(double v) { return absl::StrCat(v); }

// Checks a per-client distribution. `lo`/`hi` bound every value (use -inf/inf
// for none); `what` names the quantity for messages.
void CheckDistribution(const config::Distribution& d, const std::string& path, uint32_t num_clients,
                       double lo, double hi, const std::string& what, Problems& p) {
  const std::string range = absl::StrCat("[", Num(lo), ", ", std::isinf(hi) ? "inf" : Num(hi),
                                         std::isinf(hi) ? ")" : "]");
  auto in_range = [&](double v) { return v >= lo && v <= hi && !std::isnan(v); };
  switch (d.kind_case()) {
    case config::Distribution::kConstant:
      if (!in_range(d.constant())) {
        p.Add(path + ".constant", absl::StrCat(what, " ", Num(d.constant()), " is outside ", range,
                                               "; use a value in that range"));
      }
      break;
    case config::Distribution::kUniform: {
      const auto& u = d.uniform();
      if (!(u.lo() <= u.hi())) {
        p.Add(path + ".uniform",
              absl::StrCat("lo ", Num(u.lo()), " is greater than hi ", Num(u.hi()), "; swap them"));
      }
      if (!in_range(u.lo()) || !in_range(u.hi())) {
        p.Add(path + ".uniform",
              absl::StrCat("[lo, hi] = [", Num(u.lo()), ", ", Num(u.hi()), "] is not inside ",
                           range, " (", what, "); keep both ends in that range"));
      }
      break;
    }
    case config::Distribution::kLognormal:
      if (!(d.lognormal().sigma() >= 0)) {
        p.Add(path + ".lognormal.sigma",
              absl::StrCat("sigma ", Num(d.lognormal().sigma()), " is negative; use sigma >= 0"));
      }
      if (!std::isfinite(d.lognormal().mu())) {
        p.Add(path + ".lognormal.mu", "mu is not a finite number; use a finite mu");
      }
      break;
    case config::Distribution::kLinear: {
      const auto& l = d.linear();
      if (!(l.x_percent() >= 0 && l.x_percent() < 100)) {
        p.Add(path + ".linear.x_percent",
              absl::StrCat("x_percent ", Num(l.x_percent()),
                           " is outside [0, 100); the slowest client would get a value <= 0, "
                           "use e.g. 80 for Fraboni's F-80"));
      }
      if (!in_range(l.base())) {
        p.Add(path + ".linear.base", absl::StrCat("base ", Num(l.base()), " is outside ", range,
                                                  " (", what, "); use a value in that range"));
      }
      break;
    }
    case config::Distribution::kTable: {
      const auto& t = d.table();
      if (static_cast<uint64_t>(t.values_size()) != num_clients) {
        p.Add(path + ".table.values",
              absl::StrCat("has ", t.values_size(), " values but num_clients is ", num_clients,
                           "; give exactly one value per client"));
      }
      for (int i = 0; i < t.values_size(); ++i) {
        if (!in_range(t.values(i))) {
          p.Add(absl::StrCat(path, ".table.values[", i, "]"),
                absl::StrCat(what, " ", Num(t.values(i)), " is outside ", range,
                             "; use a value in that range"));
        }
      }
      break;
    }
    case config::Distribution::KIND_NOT_SET:
      break;
  }
}

void CheckStaleness(const config::Staleness& s, const std::string& path, Problems& p) {
  if (s.has_polynomial() && !(s.polynomial().a() >= 0)) {
    p.Add(path + ".polynomial.a", absl::StrCat("a = ", Num(s.polynomial().a()),
                                               " is negative (stale updates would weigh more); "
                                               "use a >= 0, e.g. 0.5"));
  }
  if (s.has_hinge()) {
    if (!(s.hinge().a() >= 0)) {
      p.Add(path + ".hinge.a",
            absl::StrCat("a = ", Num(s.hinge().a()), " is negative; use a >= 0"));
    }
    if (!(s.hinge().b() >= 0)) {
      p.Add(path + ".hinge.b",
            absl::StrCat("b = ", Num(s.hinge().b()), " is negative; use b >= 0"));
    }
  }
}

void CheckPositive(double v, const std::string& path, const std::string& hint, Problems& p) {
  if (!(v > 0) || std::isinf(v)) {
    p.Add(path, absl::StrCat("must be > 0, got ", Num(v), "; ", hint));
  }
}

void CheckNonNegative(double v, const std::string& path, const std::string& hint, Problems& p) {
  if (!(v >= 0) || std::isinf(v)) {
    p.Add(path, absl::StrCat("must be >= 0, got ", Num(v), "; ", hint));
  }
}

void CheckConcurrency(uint32_t c, uint32_t n, bool zero_means_all, const std::string& path,
                      Problems& p) {
  if (c == 0 && !zero_means_all) {
    p.Add(path, "is 0, so no client would ever train; use 1 .. num_clients");
  } else if (c > n) {
    p.Add(path, absl::StrCat(c, " is larger than num_clients ", n,
                             "; at most num_clients clients can train at once, lower it or "
                             "raise num_clients"));
  }
}

bool ValidNameChar(char c) {
  return std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' || c == '.';
}

std::string FileStem(const std::string& path) {
  size_t slash = path.find_last_of('/');
  std::string base = slash == std::string::npos ? path : path.substr(slash + 1);
  size_t dot = base.find('.');
  if (dot != std::string::npos && dot > 0) base = base.substr(0, dot);
  for (char& c : base) {
    if (!ValidNameChar(c)) c = '_';
  }
  if (base.empty() || base == "." || base == "..") base = "scenario";
  return base;
}

}  // namespace

// ------------------------------------------------------------ SourceMap

void SourceMap::AddParsed(const std::string& path, Location location) { parsed_[path] = location; }

void SourceMap::AddOverride(const std::string& path) { overridden_.insert(path); }

bool SourceMap::FromOverride(const std::string& path) const {
  for (const std::string& o : overridden_) {
    if (path == o) return true;
    if (path.size() > o.size() && path.compare(0, o.size(), o) == 0 &&
        (path[o.size()] == '.' || path[o.size()] == '[')) {
      return true;
    }
    // A message that --set brought into being by setting a field inside it.
    if (o.size() > path.size() && o.compare(0, path.size(), path) == 0 &&
        (o[path.size()] == '.' || o[path.size()] == '[') && parsed_.count(path) == 0) {
      return true;
    }
  }
  return false;
}

std::optional<SourceMap::Location> SourceMap::Find(const std::string& path) const {
  if (FromOverride(path)) return std::nullopt;
  auto it = parsed_.find(path);
  // A list `f: [a, b]` records one location for all its elements: use the
  // field's for elements without their own.
  if (it == parsed_.end() && !path.empty() && path.back() == ']') {
    const size_t b = path.rfind('[');
    if (b != std::string::npos) it = parsed_.find(path.substr(0, b));
  }
  if (it == parsed_.end()) return std::nullopt;
  return it->second;
}

std::string SourceMap::Describe(const std::string& path) const {
  const std::string file = FileOrPlaceholder(file_);
  if (auto loc = Find(path)) {
    return absl::StrCat(file, ":", loc->line, ":", loc->column, ": ", path);
  }
  if (FromOverride(path)) return absl::StrCat(file, ": ", path, " (from --set)");
  return absl::StrCat(file, ": ", path, " (default)");
}

// ------------------------------------------------------------ parsing

absl::StatusOr<ParsedScenario> ParseScenarioSyntax(const std::string& text,
                                                   const std::string& display_name) {
  const std::string file = FileOrPlaceholder(display_name);
  const Lines lines(text);
  ParsedScenario out;
  out.sources = SourceMap(display_name);
  pb::TextFormat::ParseInfoTree tree;
  pb::TextFormat::Parser parser;
  CollectingErrors collector;
  parser.RecordErrorsTo(&collector);
  parser.WriteLocationsTo(&tree);
  if (parser.ParseFromString(text, &out.scenario)) {
    RecordLocations(out.scenario, &tree, "", &out.sources, lines);
    return out;
  }
  std::vector<RawError> errors = collector.errors;
  for (RawError& e : RecoverErrors(text, lines)) errors.push_back(std::move(e));
  std::vector<std::tuple<int, size_t, std::string>> formatted;
  for (const RawError& e : errors) {
    std::string s = FormatError(file, lines, e);
    formatted.emplace_back(e.line, lines.ByteIndex(e.line, e.column), std::move(s));
  }
  std::sort(formatted.begin(), formatted.end());
  std::vector<std::string> messages;
  for (auto& [line, col, s] : formatted) {
    if (messages.empty() || messages.back() != s) messages.push_back(s);
  }
  if (messages.empty()) messages.push_back(file + ": could not be parsed");
  return absl::InvalidArgumentError(absl::StrJoin(messages, "\n"));
}

std::vector<std::string> JoinOverrideFragments(const std::vector<std::string>& fragments) {
  std::vector<std::string> out;
  for (const std::string& f : fragments) {
    if (!out.empty() && (OpenBrackets(out.back()) > 0 || !LooksLikeOverrideStart(f))) {
      absl::StrAppend(&out.back(), ",", f);
    } else {
      out.push_back(f);
    }
  }
  return out;
}

absl::Status ApplyOverride(const std::string& override_text, config::Scenario* scenario,
                           SourceMap* sources) {
  using F = pb::FieldDescriptor;
  auto fail = [&](const std::string& msg) {
    return absl::InvalidArgumentError(absl::StrCat("--set ", override_text, ": ", msg));
  };
  const size_t eq = override_text.find('=');
  if (eq == std::string::npos) {
    return fail("expected path.to.field=value, e.g. local.lr=0.05");
  }
  const std::string path = Trim(std::string_view(override_text).substr(0, eq));
  const std::string value = Trim(std::string_view(override_text).substr(eq + 1));
  if (path.empty()) return fail("the field path before '=' is empty");

  std::vector<std::string> elements = absl::StrSplit(path, '.');
  pb::Message* msg = scenario;
  std::string canonical;
  for (size_t i = 0; i < elements.size(); ++i) {
    const std::string& element = elements[i];
    std::string name = element;
    std::optional<int> index;
    if (size_t b = element.find('['); b != std::string::npos) {
      name = element.substr(0, b);
      const std::string digits = element.substr(b + 1, element.size() - b - 2);
      int parsed = 0;
      if (element.back() != ']' || digits.empty() ||
          !std::all_of(digits.begin(), digits.end(), [](char c) { return std::isdigit(c); }) ||
          !absl::SimpleAtoi(digits, &parsed)) {
        return fail(absl::StrCat("bad path element '", element, "'; write name[index]"));
      }
      index = parsed;
    }
    const pb::Descriptor* d = msg->GetDescriptor();
    const pb::Reflection* r = msg->GetReflection();
    if (name.empty()) return fail(absl::StrCat("empty field name in '", path, "'"));
    const F* f = d->FindFieldByName(name);
    if (f == nullptr) return fail(NoFieldMessage(name, d));
    canonical = canonical.empty() ? name : absl::StrCat(canonical, ".", name);
    if (index.has_value() && !f->is_repeated()) {
      return fail(absl::StrCat("'", name, "' is not a repeated field; remove [", *index, "]"));
    }
    if (index.has_value() && *index > r->FieldSize(*msg, f)) {
      return fail(absl::StrCat("index ", *index, " is out of range: '", name, "' has ",
                               r->FieldSize(*msg, f), " elements (index ", r->FieldSize(*msg, f),
                               " appends one)"));
    }
    const bool last = i + 1 == elements.size();
    if (!last) {
      if (f->cpp_type() != F::CPPTYPE_MESSAGE) {
        return fail(absl::StrCat("'", name, "' in ", d->name(),
                                 " is not a message, so nothing can follow it; end the path at '",
                                 canonical, "'"));
      }
      if (f->is_repeated()) {
        if (!index.has_value()) {
          return fail(absl::StrCat("'", name, "' is repeated; give an index, e.g. ", name, "[0]"));
        }
        msg = *index == r->FieldSize(*msg, f) ? r->AddMessage(msg, f)
                                              : r->MutableRepeatedMessage(msg, f, *index);
        absl::StrAppend(&canonical, "[", *index, "]");
      } else {
        msg = r->MutableMessage(msg, f);
      }
      continue;
    }
    // The field to assign: parse `name: value` into a fresh message of the
    // parent's type, so text format does all the value syntax.
    if (value.empty() && f->cpp_type() != F::CPPTYPE_STRING) {
      return fail(absl::StrCat("no value after '='; expected ", ExpectedValue(f)));
    }
    std::unique_ptr<pb::Message> scratch(msg->New());
    const std::string text = absl::StrCat(name, ": ", ValueText(f, value, index.has_value()));
    pb::TextFormat::Parser parser;
    CollectingErrors collector;
    parser.RecordErrorsTo(&collector);
    if (!parser.ParseFromString(text, scratch.get())) {
      std::string why = collector.errors.empty() ? "" : collector.errors.front().message;
      std::string a, b;
      if (MatchTwoQuoted(why, "Unknown enumeration value of \"", "\" for field \"", &a, &b) &&
          f->enum_type() != nullptr) {
        std::vector<std::string> values;
        for (int k = 0; k < f->enum_type()->value_count(); ++k) {
          values.push_back(f->enum_type()->value(k)->name());
        }
        why = BadEnumMessage(a, b, values);
      } else {
        why = Rewrite(why);
      }
      return fail(absl::StrCat("bad value for ", canonical, ": expected ", ExpectedValue(f), " (",
                               why, ")"));
    }
    const pb::Reflection* sr = scratch->GetReflection();
    if (index.has_value()) {
      if (sr->FieldSize(*scratch, f) != 1) {
        return fail(absl::StrCat("expected one value for ", canonical, "[", *index, "]"));
      }
      CopyRepeatedElement(*scratch, f, msg, *index);
      absl::StrAppend(&canonical, "[", *index, "]");
    } else {
      r->ClearField(msg, f);
      msg->MergeFrom(*scratch);
    }
  }
  if (sources != nullptr) sources->AddOverride(canonical);
  return absl::OkStatus();
}

absl::Status ApplyOverrides(const std::vector<std::string>& overrides, config::Scenario* scenario,
                            SourceMap* sources) {
  std::vector<std::string> errors;
  for (const std::string& o : JoinOverrideFragments(overrides)) {
    if (absl::Status s = ApplyOverride(o, scenario, sources); !s.ok()) {
      errors.push_back(std::string(s.message()));
    }
  }
  if (errors.empty()) return absl::OkStatus();
  return absl::InvalidArgumentError(absl::StrJoin(errors, "\n"));
}

// ------------------------------------------------------------ defaults

void FillDefaults(config::Scenario* s) {
  if (s->name().empty()) s->set_name("scenario");

  config::Dataset* dataset = s->mutable_dataset();
  if (dataset->source_case() == config::Dataset::SOURCE_NOT_SET) {
    dataset->mutable_fashion_mnist();
  }
  config::Partition* partition = s->mutable_partition();
  if (partition->kind_case() == config::Partition::KIND_NOT_SET) {
    if (dataset->has_synthetic()) {
      partition->mutable_natural();
    } else {
      partition->mutable_iid();
    }
  }
  config::Model* model = s->mutable_model();
  if (model->kind_case() == config::Model::KIND_NOT_SET) model->mutable_mlp();
  if (model->has_mlp() && model->mlp().hidden_size() == 0) {
    model->mutable_mlp()->add_hidden(200);
    model->mutable_mlp()->add_hidden(200);
  }

  config::Devices* devices = s->mutable_devices();
  DefaultDistribution(devices->mutable_seconds_per_example(), 0.001);
  DefaultDistribution(devices->mutable_latency_down_s(), 0.0);
  DefaultDistribution(devices->mutable_latency_up_s(), 0.0);
  DefaultDistribution(devices->mutable_down_mbps(), 0.0);
  DefaultDistribution(devices->mutable_up_mbps(), 0.0);

  config::Algorithm* algorithm = s->mutable_algorithm();
  if (algorithm->rule_case() == config::Algorithm::RULE_NOT_SET) algorithm->mutable_fedavg();
  if (algorithm->has_fedasync())
    DefaultStaleness(algorithm->mutable_fedasync()->mutable_staleness());
  if (algorithm->has_fedbuff()) DefaultStaleness(algorithm->mutable_fedbuff()->mutable_staleness());

  config::Participation* participation = s->mutable_participation();
  if (participation->process_case() == config::Participation::PROCESS_NOT_SET) {
    participation->mutable_always();
  }
  if (participation->has_bernoulli() || participation->has_markov() ||
      participation->has_cyclic() || participation->has_probability()) {
    config::ParticipationProbability* p = participation->mutable_probability();
    if (p->kind_case() == config::ParticipationProbability::KIND_NOT_SET) {
      p->mutable_distribution();
    }
    if (p->has_distribution()) DefaultDistribution(p->mutable_distribution(), 1.0);
  }

  s->mutable_local();
  s->mutable_stop();
  s->mutable_eval();
  s->mutable_clock();
  s->mutable_output();

  FillDeclaredDefaults(s);
}

// ------------------------------------------------------------ validation

absl::Status ValidateScenario(const config::Scenario& s, const SourceMap* sources) {
  Problems p(sources);
  const uint32_t n = s.num_clients();

  // Identity.
  if (s.name().empty()) {
    p.Add("name", "is empty; it names the output folder, set e.g. name: \"my_run\"");
  } else if (!std::all_of(s.name().begin(), s.name().end(), ValidNameChar) || s.name() == "." ||
             s.name() == "..") {
    p.Add("name", absl::StrCat("'", s.name(),
                               "' may contain only letters, digits, '-', '_' and '.' (it names "
                               "the folder <output.dir>/<name>/); rename it"));
  }
  if (n == 0) {
    p.Add("num_clients", "must be > 0, got 0; set the number of virtual clients, e.g. 100");
  }

  // Data and partition.
  if (s.dataset().has_synthetic()) {
    const auto& syn = s.dataset().synthetic();
    CheckNonNegative(syn.alpha(), "dataset.synthetic.alpha", "it is a standard deviation", p);
    CheckNonNegative(syn.beta(), "dataset.synthetic.beta", "it is a standard deviation", p);
    if (syn.examples_per_client() == 1) {
      p.Add("dataset.synthetic.examples_per_client",
            "1 leaves no room for a train/test split; use 0 (drawn sizes) or >= 2");
    }
  }
  const auto& part = s.partition();
  if (part.has_dirichlet()) {
    CheckPositive(part.dirichlet().alpha(), "partition.dirichlet.alpha",
                  "smaller alpha means stronger label skew; 0.1 .. 1 are typical", p);
  }
  if (part.has_shards() && part.shards().shards_per_client() == 0) {
    p.Add("partition.shards.shards_per_client", "must be >= 1, got 0; McMahan's setting is 2");
  }
  if (part.has_natural() && !s.dataset().has_synthetic()) {
    p.Add("partition.natural",
          "only Synthetic data comes split per client; use iid, dirichlet or shards for "
          "this dataset");
  }

  // Model.
  const auto& model = s.model();
  if (model.has_mlp()) {
    for (int i = 0; i < model.mlp().hidden_size(); ++i) {
      if (model.mlp().hidden(i) == 0) {
        p.Add(absl::StrCat("model.mlp.hidden[", i, "]"),
              "a hidden layer of width 0; remove it or give it a width > 0");
      }
    }
  }
  if (model.has_cnn()) {
    const auto& c = model.cnn();
    if (c.conv1_channels() == 0) p.Add("model.cnn.conv1_channels", "must be > 0, got 0");
    if (c.conv2_channels() == 0) p.Add("model.cnn.conv2_channels", "must be > 0, got 0");
    if (c.kernel() == 0) p.Add("model.cnn.kernel", "must be > 0, got 0; the usual is 5");
    if (c.fc() == 0) p.Add("model.cnn.fc", "must be > 0, got 0");
  }

  // Devices.
  const double kInf = std::numeric_limits<double>::infinity();
  const auto& dev = s.devices();
  CheckDistribution(dev.seconds_per_example(), "devices.seconds_per_example", n, 0, kInf,
                    "seconds per example", p);
  CheckDistribution(dev.latency_down_s(), "devices.latency_down_s", n, 0, kInf, "latency", p);
  CheckDistribution(dev.latency_up_s(), "devices.latency_up_s", n, 0, kInf, "latency", p);
  CheckDistribution(dev.down_mbps(), "devices.down_mbps", n, 0, kInf, "bandwidth (0 = unlimited)",
                    p);
  CheckDistribution(dev.up_mbps(), "devices.up_mbps", n, 0, kInf, "bandwidth (0 = unlimited)", p);
  CheckNonNegative(dev.jitter_sigma(), "devices.jitter_sigma",
                   "it is the sigma of the lognormal per-task jitter (0 = none)", p);

  // Algorithm.
  const auto& alg = s.algorithm();
  switch (alg.rule_case()) {
    case config::Algorithm::kFedavg: {
      const auto& a = alg.fedavg();
      const uint32_t m = a.clients_per_round();
      if (m == 0 || m > n) {
        p.Add("algorithm.fedavg.clients_per_round",
              absl::StrCat(m, " is outside [1, num_clients = ", n,
                           "]; pick a cohort size in that range"));
      }
      if (a.over_select() != 0 && (a.over_select() < m || a.over_select() > n)) {
        p.Add("algorithm.fedavg.over_select",
              absl::StrCat(a.over_select(), " must be 0 (off) or in [clients_per_round = ", m,
                           ", num_clients = ", n,
                           "]: it is how many clients are dispatched to "
                           "keep the first clients_per_round"));
      }
      CheckPositive(a.server_lr(), "algorithm.fedavg.server_lr", "1.0 is plain FedAvg", p);
      CheckNonNegative(a.deadline_s(), "algorithm.fedavg.deadline_s", "use 0 for no deadline", p);
      if (a.weighting() == config::WEIGHTING_UNSPECIFIED) {
        p.Add("algorithm.fedavg.weighting", "is unspecified; use EXAMPLES or UNIFORM");
      }
      break;
    }
    case config::Algorithm::kFedasync: {
      const auto& a = alg.fedasync();
      if (!(a.alpha() > 0 && a.alpha() <= 1)) {
        p.Add("algorithm.fedasync.alpha",
              absl::StrCat(Num(a.alpha()),
                           " is outside (0, 1]; it is the mixing weight of "
                           "each arrival, the paper uses 0.6"));
      }
      CheckConcurrency(a.concurrency(), n, false, "algorithm.fedasync.concurrency", p);
      CheckNonNegative(a.prox_rho(), "algorithm.fedasync.prox_rho", "use 0 for off", p);
      CheckStaleness(a.staleness(), "algorithm.fedasync.staleness", p);
      break;
    }
    case config::Algorithm::kFedbuff: {
      const auto& a = alg.fedbuff();
      if (a.buffer_size() == 0) {
        p.Add("algorithm.fedbuff.buffer_size", "must be >= 1, got 0; the paper uses 10");
      } else if (a.concurrency() > 0 && a.buffer_size() > a.concurrency()) {
        p.Add("algorithm.fedbuff.buffer_size",
              absl::StrCat(a.buffer_size(), " is larger than concurrency ", a.concurrency(),
                           ": at most concurrency updates are in flight at once, so the "
                           "buffer can never fill and no commit would happen; lower "
                           "buffer_size or raise concurrency"));
      }
      CheckConcurrency(a.concurrency(), n, false, "algorithm.fedbuff.concurrency", p);
      CheckPositive(a.server_lr(), "algorithm.fedbuff.server_lr", "1.0 is the paper's default", p);
      if (!(a.server_momentum() >= 0 && a.server_momentum() < 1)) {
        p.Add("algorithm.fedbuff.server_momentum",
              absl::StrCat(Num(a.server_momentum()),
                           " is outside [0, 1); use 0 for off or "
                           "e.g. 0.9"));
      }
      if (a.weighting() == config::WEIGHTING_UNSPECIFIED) {
        p.Add("algorithm.fedbuff.weighting", "is unspecified; use UNIFORM or EXAMPLES");
      }
      CheckStaleness(a.staleness(), "algorithm.fedbuff.staleness", p);
      break;
    }
    case config::Algorithm::kFedfix: {
      const auto& a = alg.fedfix();
      switch (a.window_case()) {
        case config::FedFix::kDeltaS:
          CheckPositive(a.delta_s(), "algorithm.fedfix.delta_s",
                        "it is the window length in virtual seconds", p);
          break;
        case config::FedFix::kDeltaFraction:
          CheckPositive(a.delta_fraction(), "algorithm.fedfix.delta_fraction",
                        "it is a fraction of the slowest client's expected task time, e.g. 0.5", p);
          break;
        case config::FedFix::WINDOW_NOT_SET:
          p.Add("algorithm.fedfix",
                "has no window; set exactly one of delta_s (seconds) or delta_fraction "
                "(of the slowest client's expected task time), e.g. delta_fraction: 0.5");
          break;
      }
      CheckPositive(a.server_lr(), "algorithm.fedfix.server_lr", "1.0 is the paper's default", p);
      CheckConcurrency(a.concurrency(), n, true, "algorithm.fedfix.concurrency", p);
      break;
    }
    case config::Algorithm::kAsyncFedavg: {
      const auto& a = alg.async_fedavg();
      CheckPositive(a.server_lr(), "algorithm.async_fedavg.server_lr", "1.0 is the paper's default",
                    p);
      CheckConcurrency(a.concurrency(), n, true, "algorithm.async_fedavg.concurrency", p);
      if (a.weights() == config::AsyncFedAvg::WEIGHTS_UNSPECIFIED) {
        p.Add("algorithm.async_fedavg.weights", "is unspecified; use IDENTICAL or WEIGHT");
      }
      break;
    }
    case config::Algorithm::kFedau: {
      const auto& a = alg.fedau();
      CheckPositive(a.server_lr(), "algorithm.fedau.server_lr", "1.0 is the paper's default", p);
      if (a.method() == config::FedAu::METHOD_UNSPECIFIED) {
        p.Add("algorithm.fedau.method", "is unspecified; use e.g. FEDAU");
      }
      break;
    }
    case config::Algorithm::RULE_NOT_SET:
      p.Add("algorithm", "no rule chosen; set e.g. algorithm { fedavg {} }");
      break;
  }

  // Participation.
  const auto& part_cfg = s.participation();
  if (part_cfg.has_markov() && !(part_cfg.markov().a() > 0 && part_cfg.markov().a() <= 1)) {
    p.Add("participation.markov.a", absl::StrCat(Num(part_cfg.markov().a()),
                                                 " is outside (0, 1]; it is the probability "
                                                 "of switching on, e.g. 0.05"));
  }
  if (part_cfg.has_cyclic() && part_cfg.cyclic().period() == 0) {
    p.Add("participation.cyclic.period", "must be >= 1, got 0; e.g. 100 rounds");
  }
  if (part_cfg.has_trace() && part_cfg.trace().csv().empty()) {
    p.Add("participation.trace.csv",
          "is empty; give a CSV file with the header client,start_s,end_s");
  }
  CheckNonNegative(part_cfg.round_s(), "participation.round_s", "use 0 for rounds only", p);
  if (part_cfg.has_probability()) {
    const auto& prob = part_cfg.probability();
    if (prob.has_distribution()) {
      CheckDistribution(prob.distribution(), "participation.probability.distribution", n, 0, 1,
                        "probability", p);
    }
    if (prob.has_label_correlated()) {
      const auto& lc = prob.label_correlated();
      const std::string base = "participation.probability.label_correlated";
      if (!(lc.p_mean() >= 0 && lc.p_mean() <= 1)) {
        p.Add(base + ".p_mean", absl::StrCat(Num(lc.p_mean()), " is not a probability in [0, 1]"));
      }
      if (!(lc.p_min() >= 0 && lc.p_min() <= 1)) {
        p.Add(base + ".p_min", absl::StrCat(Num(lc.p_min()), " is not a probability in [0, 1]"));
      }
      CheckPositive(lc.alpha_part(), base + ".alpha_part", "it is a Dirichlet concentration", p);
    }
  }

  // Scripted events.
  for (int i = 0; i < s.events_size(); ++i) {
    const auto& e = s.events(i);
    const std::string base = absl::StrCat("events[", i, "]");
    if (!e.has_at_s()) {
      p.Add(base, "has no at_s; give the virtual time in seconds when it happens");
    } else if (!(e.at_s() >= 0) || std::isinf(e.at_s())) {
      p.Add(base + ".at_s", absl::StrCat(Num(e.at_s()),
                                         " is not a time >= 0; events happen at "
                                         "virtual times from 0 on"));
    }
    for (int k = 0; k < e.clients_size(); ++k) {
      if (e.clients(k) >= n) {
        p.Add(absl::StrCat(base, ".clients[", k, "]"),
              absl::StrCat("client ", e.clients(k), " does not exist (clients are 0 .. ",
                           n == 0 ? 0 : n - 1, "); fix the id or raise num_clients"));
      }
    }
    if (e.kind_case() == config::ScriptedEvent::KIND_NOT_SET) {
      p.Add(base, "says nothing happens; set one of join, leave or dropout to true");
    }
  }

  // Local training.
  const auto& local = s.local();
  if (local.epochs() == 0 && local.steps() == 0) {
    p.Add("local.epochs",
          "epochs and steps are both 0, so a task would do nothing; set "
          "epochs >= 1 or steps >= 1");
  }
  if (local.batch_size() == 0) p.Add("local.batch_size", "must be > 0, got 0; e.g. 10");
  CheckPositive(local.lr(), "local.lr", "e.g. 0.1", p);
  if (!(local.momentum() >= 0 && local.momentum() < 1)) {
    p.Add("local.momentum", absl::StrCat(Num(local.momentum()),
                                         " is outside [0, 1); use 0 for plain SGD or e.g. 0.9"));
  }
  CheckNonNegative(local.weight_decay(), "local.weight_decay", "use 0 for off", p);
  CheckNonNegative(local.prox_mu(), "local.prox_mu", "use 0 for off", p);

  // Stop and evaluation.
  const auto& stop = s.stop();
  if (stop.max_commits() == 0 && stop.max_virtual_s() == 0 && stop.target_accuracy() == 0) {
    p.Add("stop",
          "has no condition, so the run would never end; set max_commits, "
          "max_virtual_s or target_accuracy (whichever comes first stops the run)");
  }
  CheckNonNegative(stop.max_virtual_s(), "stop.max_virtual_s", "use 0 for no time limit", p);
  if (stop.target_accuracy() != 0 && !(stop.target_accuracy() > 0 && stop.target_accuracy() <= 1)) {
    p.Add("stop.target_accuracy",
          absl::StrCat(Num(stop.target_accuracy()),
                       " is outside (0, 1]; accuracy is a fraction, e.g. 0.8 (0 = not used)"));
  }
  const auto& eval = s.eval();
  CheckNonNegative(eval.every_virtual_s(), "eval.every_virtual_s", "use 0 for not by time", p);
  if (stop.target_accuracy() > 0 && eval.every_commits() == 0 && eval.every_virtual_s() == 0) {
    p.Add("stop.target_accuracy",
          "is set but evaluation never runs (eval.every_commits and eval.every_virtual_s are "
          "0), so it could never be reached; set eval.every_commits: 1");
  }

  // Recorded schedule (the files themselves are read by PrepareRun).
  if (s.has_schedule()) {
    const auto& sch = s.schedule();
    const bool has_events = !sch.events().empty();
    const bool has_csv = !sch.durations_csv().empty();
    if (has_events && has_csv) {
      p.Add("schedule.durations_csv",
            "is set together with schedule.events; give one of them (events.jsonl brings "
            "durations and availability, the CSV durations only)");
    } else if (!has_events && !has_csv) {
      p.Add("schedule",
            "is empty; set schedule.events to a recorded run's events.jsonl (or its run "
            "folder), or schedule.durations_csv to a CSV client,task_index,duration_s");
    }
  }

  // Clock and output.
  CheckNonNegative(s.clock().time_scale(), "clock.time_scale", "use 0 for no sleeping", p);
  if (s.clock().mode() == config::Clock::MODE_UNSPECIFIED) {
    p.Add("clock.mode", "is unspecified; use VIRTUAL or WALL");
  }
  if (s.output().dir().empty()) {
    p.Add("output.dir", "is empty; give a folder for runs, e.g. \"runs\"");
  }
  return p.ToStatus();
}

// ------------------------------------------------------------ pipeline

absl::StatusOr<config::Scenario> ParseScenarioText(const std::string& text,
                                                   const std::string& display_name,
                                                   const std::vector<std::string>& overrides,
                                                   SourceMap* sources_out) {
  absl::StatusOr<ParsedScenario> parsed = ParseScenarioSyntax(text, display_name);
  if (!parsed.ok()) return parsed.status();
  config::Scenario scenario = std::move(parsed->scenario);
  SourceMap sources = std::move(parsed->sources);
  if (absl::Status s = ApplyOverrides(overrides, &scenario, &sources); !s.ok()) return s;
  if (!scenario.has_name() || scenario.name().empty()) {
    scenario.set_name(display_name.empty() ? std::string("scenario") : FileStem(display_name));
  }
  FillDefaults(&scenario);
  if (absl::Status s = ValidateScenario(scenario, &sources); !s.ok()) return s;
  if (sources_out != nullptr) *sources_out = std::move(sources);
  return scenario;
}

absl::StatusOr<config::Scenario> LoadScenario(const std::string& path,
                                              const std::vector<std::string>& overrides) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    return absl::NotFoundError(absl::StrCat(path, ": cannot open the scenario file"));
  }
  std::stringstream buffer;
  buffer << in.rdbuf();
  if (in.bad()) return absl::DataLossError(absl::StrCat(path, ": read error"));
  return ParseScenarioText(buffer.str(), path, overrides);
}

std::string ScenarioToText(const config::Scenario& scenario) {
  pb::TextFormat::Printer printer;
  std::string out;
  printer.PrintToString(scenario, &out);
  return out;
}

std::string ScenarioHash(const config::Scenario& scenario) {
  return Sha256Hex(ScenarioToText(scenario));
}

std::string ScenarioDir(const std::string& path) {
  size_t slash = path.find_last_of('/');
  if (slash == std::string::npos) return ".";
  if (slash == 0) return "/";
  return path.substr(0, slash);
}

}  // namespace fedsim
