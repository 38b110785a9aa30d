// The --set language: `path.to.field=value` assignments on top of a parsed
// message, for any protobuf message type (a scenario, a worker config, ...).
//
//   local.lr=0.05                        a scalar
//   partition.dirichlet.alpha=0.1        a field inside a oneof member selects
//                                        that member and clears the others
//   model.mlp.hidden=[100,50]            a repeated field (brackets optional)
//   model.mlp.hidden[1]=9                one element (index == size appends)
//   events[0]={at_s: 5 join: true}       a message (braces optional)
//   partition={dirichlet{alpha:0.1}}
//
// Errors name the override and the bad part, with a did-you-mean:
//   --set local.lrr=0.1: no field 'lrr' in LocalTraining (did you mean 'lr'?)
//
// Thread safety: pure functions; may be called from any thread.
#ifndef FEDSIM_CONFIG_OVERRIDES_H_
#define FEDSIM_CONFIG_OVERRIDES_H_

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "config/source_map.h"
#include "google/protobuf/message.h"

namespace fedsim {

// One override `path=value` on *message:
//   - path: field names of message's type separated by '.'; a repeated
//     message field takes an index, "events[0].at_s" (index == size appends
//     a new element).
//   - value: in text format for the field's type: 0.05, true, UNIFORM, "text"
//     (quotes optional for strings), [100, 50] for repeated fields (brackets
//     optional), {dirichlet {alpha: 0.1}} for messages (braces optional).
//   A message or repeated value replaces the field's content; it is not merged.
//   Setting a field inside a oneof member selects that member and clears the
//   others.
// Errors (InvalidArgument) start with "--set <override>: " and name the bad
// path element with a did-you-mean among the message's fields, or the bad
// value with what was expected. On success the assigned path is recorded in
// *sources (may be null) so later problems about it say "(from --set)".
absl::Status ApplyOverride(const std::string& override_text, google::protobuf::Message* message,
                           SourceMap* sources);

// Applies overrides in order, after JoinOverrideFragments. Reports every bad
// override (one per line), not only the first; the good ones are applied.
absl::Status ApplyOverrides(const std::vector<std::string>& overrides,
                            google::protobuf::Message* message, SourceMap* sources);

// Absl's vector flag splits its value at commas, so "hidden=[100,50]" arrives
// as "hidden=[100" and "50]". Joins a fragment back onto the previous one
// when that one has unclosed brackets or quotes, or when the fragment cannot
// start an override (does not begin like `a.b[3].c=`).
std::vector<std::string> JoinOverrideFragments(const std::vector<std::string>& fragments);

}  // namespace fedsim

#endif  // FEDSIM_CONFIG_OVERRIDES_H_
