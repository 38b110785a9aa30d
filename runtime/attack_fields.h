// The attack fields that config::Adversarial (local training) and
// config::Robust (evaluation) share: attack, norm, eps, step_size, steps,
// random_start, clip_min, clip_max. Their reading into ml's AttackOptions
// and their checks are written once here for both messages (templates over
// the message type, whose accessors are spelled alike). Internal to
// runtime/: local_recipe.cc and robust_recipe.cc use it.
//
// Thread safety: pure functions.
#ifndef FEDSIM_RUNTIME_ATTACK_FIELDS_H_
#define FEDSIM_RUNTIME_ATTACK_FIELDS_H_

#include <cmath>
#include <cstdint>
#include <string>

#include "absl/strings/str_cat.h"
#include "ml/attack.h"
#include "proto/scenario.pb.h"
#include "util/problems.h"

namespace fedsim {
namespace attack_fields {

// PGD's step when the message leaves step_size out (FGSM's is eps).
constexpr double kPgdDefaultStepSize = 0.01;

// The attack `m` describes, with the attack-dependent defaults filled in:
// PGD takes `pgd_steps` steps of 0.01 from a random start, FGSM one step of
// eps from the clean input. Field values are not checked (see Validate).
template <typename M>
AttackOptions ToOptions(const M& m, uint32_t pgd_steps) {
  const bool fgsm = m.attack() == config::Adversarial::FGSM;
  return AttackOptions{
      .kind = fgsm ? AttackKind::kFgsm : AttackKind::kPgd,
      .norm = m.norm() == config::Adversarial::L2 ? AttackNorm::kL2 : AttackNorm::kLinf,
      .eps = m.eps(),
      .step_size = m.has_step_size() ? m.step_size()
                   : fgsm            ? m.eps()
                                     : kPgdDefaultStepSize,
      .steps = static_cast<int>(m.has_steps() ? m.steps()
                                : fgsm        ? 1
                                              : pgd_steps),
      .random_start = m.has_random_start() ? m.random_start() : !fgsm,
      .clip_min = static_cast<float>(m.clip_min()),
      .clip_max = static_cast<float>(m.clip_max())};
}

// Adds a problem under `path`.<field> for each attack field of `m` that the
// attack would reject or that makes no sense: unspecified enums, eps
// negative, zero (`eps_zero` says why that is pointless here) or not
// finite, a step_size that is not > 0, steps 0, FGSM with steps other than
// 1, an empty or NaN clip range.
template <typename M>
void Validate(const M& m, uint32_t pgd_steps, const std::string& path, const std::string& eps_zero,
              ProblemList* problems) {
  auto add = [&](const char* field, std::string message) {
    problems->Add(absl::StrCat(path, ".", field), std::move(message));
  };
  if (m.attack() == config::Adversarial::ATTACK_UNSPECIFIED) {
    add("attack", "is unspecified; set attack: PGD or attack: FGSM");
  }
  if (m.norm() == config::Adversarial::NORM_UNSPECIFIED) {
    add("norm", "is unspecified; set norm: LINF or norm: L2");
  }
  if (!std::isfinite(m.eps()) || m.eps() < 0) {
    add("eps", absl::StrCat(m.eps(), " is not a radius; use a finite eps > 0, e.g. 0.1"));
  } else if (m.eps() == 0) {
    add("eps", eps_zero);
  }
  const AttackOptions o = ToOptions(m, pgd_steps);
  if (!std::isfinite(o.step_size) || !(o.step_size > 0)) {
    add("step_size", absl::StrCat(o.step_size, " must be finite and > 0, e.g. 0.01"));
  }
  if (m.has_steps() && m.steps() == 0) {
    add("steps", "must be >= 1, got 0; PGD typically takes 7 to 20");
  }
  if (m.attack() == config::Adversarial::FGSM && m.has_steps() && m.steps() != 1) {
    add("steps", absl::StrCat("FGSM takes exactly one step, got ", m.steps(),
                              "; remove steps or use attack: PGD"));
  }
  if (std::isnan(m.clip_min()) || std::isnan(m.clip_max()) || !(m.clip_min() < m.clip_max())) {
    add("clip_min", absl::StrCat("the valid range [", m.clip_min(), ", ", m.clip_max(),
                                 "] is empty; use [0, 1] for pixels, [-inf, inf] for "
                                 "unbounded features"));
  }
}

}  // namespace attack_fields
}  // namespace fedsim

#endif  // FEDSIM_RUNTIME_ATTACK_FIELDS_H_
