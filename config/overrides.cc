#include "config/overrides.h"

#include <algorithm>
#include <cctype>
#include <memory>
#include <optional>
#include <utility>

#include "absl/strings/escaping.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "config/text_errors.h"
#include "google/protobuf/descriptor.h"
#include "google/protobuf/text_format.h"

namespace fedsim {
namespace {

namespace pb = google::protobuf;
using config_internal::BadEnumMessage;
using config_internal::CollectingErrors;
using config_internal::EnumValueNames;
using config_internal::MatchTwoQuoted;
using config_internal::NoFieldMessage;
using config_internal::RewriteParserMessage;

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

}  // namespace

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

absl::Status ApplyOverride(const std::string& override_text, pb::Message* message,
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
  pb::Message* msg = message;
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
        why = BadEnumMessage(a, b, EnumValueNames(f->enum_type()));
      } else {
        why = RewriteParserMessage(why, message->GetDescriptor());
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

absl::Status ApplyOverrides(const std::vector<std::string>& overrides, pb::Message* message,
                            SourceMap* sources) {
  std::vector<std::string> errors;
  for (const std::string& o : JoinOverrideFragments(overrides)) {
    if (absl::Status s = ApplyOverride(o, message, sources); !s.ok()) {
      errors.push_back(std::string(s.message()));
    }
  }
  if (errors.empty()) return absl::OkStatus();
  return absl::InvalidArgumentError(absl::StrJoin(errors, "\n"));
}

}  // namespace fedsim
