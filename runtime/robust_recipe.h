// From the scenario's eval.robust message (config::Robust) to the robust
// evaluation ml/ runs (ml/robust_eval.h): the one place that reads its
// fields. The sim evaluator runs the plan at every evaluation; `fedsim
// train` builds the same message from its flags, so both evaluate alike.
//
// Thread safety: pure functions.
#ifndef FEDSIM_RUNTIME_ROBUST_RECIPE_H_
#define FEDSIM_RUNTIME_ROBUST_RECIPE_H_

#include <cstdint>
#include <string>

#include "ml/robust_eval.h"
#include "proto/scenario.pb.h"
#include "util/problems.h"

namespace fedsim {

// The evaluation `robust` describes for a run of `seed`, with the
// attack-dependent defaults filled in (PGD: 20 steps of 0.01 from a random
// start; FGSM: one step of eps from the clean input). Field values are not
// checked here: see ValidateRobust.
RobustEvalPlan RobustEvalFromConfig(const config::Robust& robust, uint64_t seed);

// Adds a problem under `path` (e.g. "eval.robust") for each field of
// `robust` that the evaluation would reject or that makes no sense:
// unspecified enums, eps negative, zero or not finite, a step_size that is
// not > 0, steps 0, FGSM with steps other than 1, an empty or NaN clip
// range. The config layer calls it during validation.
void ValidateRobust(const config::Robust& robust, const std::string& path,
                    ProblemList* problems);

}  // namespace fedsim

#endif  // FEDSIM_RUNTIME_ROBUST_RECIPE_H_
