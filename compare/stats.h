// Statistics over a handful of seeds: mean, sample standard deviation, and
// the 95% confidence interval of a mean from Student's t distribution
// (the paired differences of summary.md).
//
// Thread safety: pure functions.
#ifndef FEDSIM_COMPARE_STATS_H_
#define FEDSIM_COMPARE_STATS_H_

#include <optional>
#include <vector>

namespace fedsim {

// REQUIRES: !x.empty().
double Mean(const std::vector<double>& x);
// Sample standard deviation (divisor n - 1); 0 for a single value.
// REQUIRES: !x.empty().
double SampleStd(const std::vector<double>& x);

// The 0.975 quantile of Student's t distribution with `df` degrees of
// freedom (12.706 for 1, 2.262 for 9, -> 1.960): exact table values for
// df <= 30, a Cornish-Fisher expansion beyond (error < 1e-4).
// REQUIRES: df >= 1.
double StudentT975(int df);

struct MeanInterval {
  double mean = 0;
  int n = 0;
  // mean -+ t(0.975, n-1) * sd / sqrt(n); unset when n < 2.
  std::optional<double> lo, hi;
};

// The mean of `x` and its two-sided 95% interval (t distribution, n - 1
// degrees of freedom). REQUIRES: !x.empty().
MeanInterval Interval95(const std::vector<double>& x);

}  // namespace fedsim

#endif  // FEDSIM_COMPARE_STATS_H_
