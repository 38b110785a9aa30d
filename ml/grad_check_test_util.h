// Finite-difference gradient checking shared by the ml tests (test-only).
//
// Central differences with step eps on a scalar function f. Coordinates where
// f has a kink inside [-eps, eps] (ReLU, max-pool switching) are detected by
// their second difference and skipped; the caller bounds how many may be.
#ifndef FEDSIM_ML_GRAD_CHECK_TEST_UTIL_H_
#define FEDSIM_ML_GRAD_CHECK_TEST_UTIL_H_

#include <algorithm>
#include <cmath>
#include <cstddef>
#include <functional>
#include <span>
#include <string>
#include <vector>

#include "gtest/gtest.h"

namespace fedsim {
namespace testing {

struct GradCheckOptions {
  // Default: 1e-3.
  double eps = 1e-3;
  // Default: 2e-3 absolute plus 2e-2 relative.
  double atol = 2e-3;
  double rtol = 2e-2;
  // Default: 2e-6. A second difference above this marks a kink: skipped.
  double kink = 2e-6;
  // Default: 0.1. At most this fraction of the checked coordinates may be skipped.
  double max_skipped_fraction = 0.1;
  // Default: 0 = check every coordinate; else about this many, evenly spread.
  size_t max_coords = 0;
};

// Checks analytic[i] against d f / d v[i] for the coordinates of v. f reads v
// (which this function perturbs in place and restores).
inline void CheckGradient(const std::string& what, std::span<float> v,
                          std::span<const float> analytic, const std::function<double()>& f,
                          const GradCheckOptions& o = {}) {
  ASSERT_EQ(v.size(), analytic.size()) << what;
  const size_t stride =
      o.max_coords == 0 ? 1 : std::max<size_t>(1, v.size() / o.max_coords);
  size_t checked = 0, skipped = 0, failures = 0;
  double max_abs_analytic = 0.0;
  const double f0 = f();
  for (size_t i = 0; i < v.size(); i += stride) {
    const float orig = v[i];
    v[i] = static_cast<float>(orig + o.eps);
    const double step_up = static_cast<double>(v[i]) - orig;
    const double fp = f();
    v[i] = static_cast<float>(orig - o.eps);
    const double step_down = orig - static_cast<double>(v[i]);
    const double fm = f();
    v[i] = orig;
    ++checked;
    if (std::abs(fp - 2 * f0 + fm) > o.kink) {
      ++skipped;
      continue;
    }
    const double fd = (fp - fm) / (step_up + step_down);
    const double an = analytic[i];
    max_abs_analytic = std::max(max_abs_analytic, std::abs(an));
    if (std::abs(fd - an) > o.atol + o.rtol * std::max(std::abs(fd), std::abs(an))) {
      if (++failures <= 10) {
        ADD_FAILURE() << what << "[" << i << "]: analytic " << an << " vs finite difference "
                      << fd;
      }
    }
  }
  EXPECT_EQ(failures, 0u) << what << ": " << failures << " of " << checked << " mismatched";
  EXPECT_LE(static_cast<double>(skipped), o.max_skipped_fraction * checked)
      << what << ": too many kinks skipped (" << skipped << " of " << checked << ")";
  // A gradient of all zeros would pass trivially.
  EXPECT_GT(max_abs_analytic, 1e-3) << what << ": gradient is (almost) all zero";
}

}  // namespace testing
}  // namespace fedsim

#endif  // FEDSIM_ML_GRAD_CHECK_TEST_UTIL_H_
