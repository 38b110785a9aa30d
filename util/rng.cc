#include "util/rng.h"

#include <algorithm>
#include <cmath>
#include <numbers>
#include <unordered_set>

namespace fedsim {

namespace {
// Up to this many draws, SampleWithoutReplacement checks for repeats by a
// scan of its output instead of a hash set.
constexpr uint64_t kScanSample = 32;
}  // namespace

Rng Rng::Fork(uint64_t c) const { return Rng(Mix64(key_ ^ Mix64(c + 0x510e527fade682d1ull))); }

uint64_t Rng::NextU64() {
  // SplitMix64 with the key as its starting point: the i-th output is a pure
  // function of (key, i).
  ++counter_;
  return Mix64(key_ + counter_ * 0x9e3779b97f4a7c15ull);
}

double Rng::Uniform() { return static_cast<double>(NextU64() >> 11) * 0x1.0p-53; }

uint64_t Rng::UniformInt(uint64_t n) {
  // Lemire's nearly divisionless method would do too; plain rejection keeps
  // the code obvious and is exact.
  const uint64_t limit = UINT64_MAX - UINT64_MAX % n;
  uint64_t x;
  do {
    x = NextU64();
  } while (x >= limit);
  return x % n;
}

double Rng::Normal() {
  double u1 = Uniform();
  const double u2 = Uniform();
  if (u1 <= 0.0) u1 = 0x1.0p-60;
  return std::sqrt(-2.0 * std::log(u1)) * std::cos(2.0 * std::numbers::pi * u2);
}

double Rng::LogNormal(double mu, double sigma) { return std::exp(Normal(mu, sigma)); }

double Rng::Gamma(double shape) {
  if (shape < 1.0) {
    double u = Uniform();
    if (u <= 0.0) u = 0x1.0p-60;
    return Gamma(shape + 1.0) * std::pow(u, 1.0 / shape);
  }
  const double d = shape - 1.0 / 3.0;
  const double c = 1.0 / std::sqrt(9.0 * d);
  while (true) {
    double x, v;
    do {
      x = Normal();
      v = 1.0 + c * x;
    } while (v <= 0.0);
    v = v * v * v;
    const double u = Uniform();
    if (u < 1.0 - 0.0331 * x * x * x * x) return d * v;
    if (u > 0.0 && std::log(u) < 0.5 * x * x + d * (1.0 - v + std::log(v))) return d * v;
  }
}

std::vector<double> Rng::Dirichlet(std::span<const double> alpha) {
  std::vector<double> out(alpha.size());
  double sum = 0.0;
  for (size_t i = 0; i < alpha.size(); ++i) {
    out[i] = Gamma(alpha[i]);
    sum += out[i];
  }
  if (sum <= 0.0) {
    // All draws underflowed (tiny alpha): put the whole mass on one index,
    // which is the limit of the distribution as alpha -> 0.
    std::fill(out.begin(), out.end(), 0.0);
    if (!out.empty()) out[UniformInt(out.size())] = 1.0;
    return out;
  }
  for (double& v : out) v /= sum;
  return out;
}

std::vector<double> Rng::DirichletSymmetric(double alpha, size_t n) {
  std::vector<double> a(n, alpha);
  return Dirichlet(a);
}

std::vector<uint64_t> Rng::SampleWithoutReplacement(uint64_t n, uint64_t k) {
  std::vector<uint64_t> out;
  out.reserve(k);
  if (k * 4 >= n) {
    // Dense case: a partial Fisher-Yates over [0, n) is cheaper than hashing.
    std::vector<uint64_t> all(n);
    for (uint64_t i = 0; i < n; ++i) all[i] = i;
    for (uint64_t i = 0; i < k; ++i) {
      uint64_t j = i + UniformInt(n - i);
      std::swap(all[i], all[j]);
      out.push_back(all[i]);
    }
    return out;
  }
  if (k <= kScanSample) {
    // Floyd's algorithm as below, with membership by a scan of the few drawn
    // so far: the same draws and results, without a hash set's allocations
    // (an asynchronous rule samples one client per event).
    for (uint64_t j = n - k; j < n; ++j) {
      const uint64_t t = UniformInt(j + 1);
      const bool seen = std::find(out.begin(), out.end(), t) != out.end();
      out.push_back(seen ? j : t);
    }
    return out;
  }
  std::unordered_set<uint64_t> seen;
  seen.reserve(k * 2);
  for (uint64_t j = n - k; j < n; ++j) {
    uint64_t t = UniformInt(j + 1);
    if (seen.insert(t).second) {
      out.push_back(t);
    } else {
      seen.insert(j);
      out.push_back(j);
    }
  }
  return out;
}

}  // namespace fedsim
