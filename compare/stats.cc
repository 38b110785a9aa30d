#include "compare/stats.h"

#include <cmath>

namespace fedsim {

double Mean(const std::vector<double>& x) {
  double s = 0;
  for (double v : x) s += v;
  return s / static_cast<double>(x.size());
}

double SampleStd(const std::vector<double>& x) {
  if (x.size() < 2) return 0;
  const double m = Mean(x);
  double ss = 0;
  for (double v : x) ss += (v - m) * (v - m);
  return std::sqrt(ss / static_cast<double>(x.size() - 1));
}

double StudentT975(int df) {
  // t(0.975, df) for df = 1..30 (standard tables, 9 decimals).
  static constexpr double kTable[30] = {
      12.706204736, 4.302652730, 3.182446305, 2.776445105, 2.570581836, 2.446911851,
      2.364624252,  2.306004135, 2.262157163, 2.228138852, 2.200985160, 2.178812830,
      2.160368656,  2.144786688, 2.131449546, 2.119905299, 2.109815578, 2.100922040,
      2.093024054,  2.085963447, 2.079613845, 2.073873068, 2.068657610, 2.063898562,
      2.059538553,  2.055529439, 2.051830516, 2.048407142, 2.045229642, 2.042272456};
  if (df <= 30) return kTable[df - 1];
  // Cornish-Fisher expansion of the t quantile around the normal one
  // (Abramowitz & Stegun 26.7.5).
  const double z = 1.959963984540054;
  const double v = df;
  const double z2 = z * z, z3 = z2 * z, z5 = z3 * z2, z7 = z5 * z2, z9 = z7 * z2;
  const double g1 = (z3 + z) / 4;
  const double g2 = (5 * z5 + 16 * z3 + 3 * z) / 96;
  const double g3 = (3 * z7 + 19 * z5 + 17 * z3 - 15 * z) / 384;
  const double g4 = (79 * z9 + 776 * z7 + 1482 * z5 - 1920 * z3 - 945 * z) / 92160;
  return z + g1 / v + g2 / (v * v) + g3 / (v * v * v) + g4 / (v * v * v * v);
}

MeanInterval Interval95(const std::vector<double>& x) {
  MeanInterval out;
  out.mean = Mean(x);
  out.n = static_cast<int>(x.size());
  if (out.n >= 2) {
    const double half = StudentT975(out.n - 1) * SampleStd(x) / std::sqrt(out.n);
    out.lo = out.mean - half;
    out.hi = out.mean + half;
  }
  return out;
}

}  // namespace fedsim
