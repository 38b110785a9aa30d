#include "config/text_errors.h"

#include <algorithm>
#include <set>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "util/spell.h"

namespace fedsim::config_internal {
namespace {

namespace pb = google::protobuf;

// The values of every enum field named `field` reachable from `root`.
std::vector<std::string> EnumValuesOfField(const pb::Descriptor* root, const std::string& field) {
  std::vector<std::string> out;
  std::vector<const pb::Descriptor*> todo = {root};
  std::set<const pb::Descriptor*> seen;
  while (!todo.empty()) {
    const pb::Descriptor* d = todo.back();
    todo.pop_back();
    if (!seen.insert(d).second) continue;
    for (int i = 0; i < d->field_count(); ++i) {
      const pb::FieldDescriptor* f = d->field(i);
      if (f->message_type() != nullptr) todo.push_back(f->message_type());
      if (f->enum_type() != nullptr && f->name() == field) {
        for (const std::string& name : EnumValueNames(f->enum_type())) {
          if (std::find(out.begin(), out.end(), name) == out.end()) out.push_back(name);
        }
      }
    }
  }
  return out;
}

}  // namespace

std::string NoFieldMessage(std::string_view name, const pb::Descriptor* d) {
  std::vector<std::string_view> names;
  for (int i = 0; i < d->field_count(); ++i) names.push_back(d->field(i)->name());
  std::string hint = DidYouMean(name, names);
  if (hint.empty()) {
    std::vector<std::string> list(names.begin(), names.end());
    hint = absl::StrCat(" (its fields: ", absl::StrJoin(list, ", "), ")");
  }
  return absl::StrCat("no field '", std::string(name), "' in ", d->name(), hint);
}

std::vector<std::string> EnumValueNames(const pb::EnumDescriptor* e) {
  std::vector<std::string> names;
  for (int i = 0; i < e->value_count(); ++i) names.push_back(e->value(i)->name());
  return names;
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

std::string RewriteParserMessage(const std::string& msg, const pb::Descriptor* root) {
  std::string a, b;
  if (MatchTwoQuoted(msg, "Message type \"", "\" has no field named \"", &a, &b)) {
    const pb::Descriptor* d = root->file()->pool()->FindMessageTypeByName(a);
    if (d != nullptr) return NoFieldMessage(b, d);
  }
  if (MatchTwoQuoted(msg, "Unknown enumeration value of \"", "\" for field \"", &a, &b)) {
    return BadEnumMessage(a, b, EnumValuesOfField(root, b));
  }
  if (absl::EndsWith(msg, "got: ")) return msg + "end of file (is a '}' missing?)";
  return msg;
}

}  // namespace fedsim::config_internal
