// Defaults: making every default of a configuration explicit, so that
// printing it shows the whole configuration (`fedsim validate`) and its hash
// names the run exactly.
//
// Two kinds of default:
//  - declared in the schema with [default = ...]: filled generically, for any
//    message type, by reflection (FillDeclaredDefaults);
//  - documented in comments, which the schema cannot declare (a oneof's
//    default member, a repeated field's default list): filled by the code
//    that owns the section: the fleet sections in fleet.h, each aggregation
//    rule through its registry row's fill_defaults (algorithms/registry.h),
//    the rest of the scenario here.
//
// Thread safety: pure functions on their argument.
#ifndef FEDSIM_CONFIG_DEFAULTS_H_
#define FEDSIM_CONFIG_DEFAULTS_H_

#include "google/protobuf/message.h"
#include "proto/scenario.pb.h"

namespace fedsim {

// Sets each unset singular field that declares a default in the schema, in
// *message and in every message present in it (repeated ones included).
// Scalar members of a oneof are choices, never defaults: they stay unset.
// Idempotent.
void FillDeclaredDefaults(google::protobuf::Message* message);

// Every default of a scenario: dataset fashion_mnist {}, partition iid {}
// (natural {} for Synthetic), model mlp {hidden: [200, 200]}, the fleet
// defaults (fleet.h), the registry's default rule when none is chosen and the
// chosen rule's fill_defaults, participation defaults, local / stop / eval /
// clock / output / limits present, then FillDeclaredDefaults. An empty name
// becomes "scenario". Idempotent.
void FillDefaults(config::Scenario* scenario);

}  // namespace fedsim

#endif  // FEDSIM_CONFIG_DEFAULTS_H_
