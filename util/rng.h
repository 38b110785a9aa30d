// Counter-based random numbers.
//
// Every random draw in fedsim is a pure function of
//   (scenario seed, purpose, a, b, index of the draw in that stream)
// where `purpose` names what the numbers are for ("jitter", "batch_order", ...)
// and `a`, `b` are ids (client id, task id, round, ...). No generator is ever
// shared between threads or touched in thread order, so results do not depend
// on scheduling. Distributions are implemented here rather than taken from
// <random>, whose distribution algorithms differ between standard libraries.
//
// Thread safety: an Rng object is a small value; not thread-safe, but cheap to
// create, so each user makes its own.
#ifndef FEDSIM_UTIL_RNG_H_
#define FEDSIM_UTIL_RNG_H_

#include <cstdint>
#include <span>
#include <string_view>
#include <utility>
#include <vector>

namespace fedsim {

// 64-bit FNV-1a of a string, usable at compile time (purpose names).
constexpr uint64_t HashString(std::string_view s) {
  uint64_t h = 0xcbf29ce484222325ull;
  for (char c : s) {
    h ^= static_cast<uint8_t>(c);
    h *= 0x100000001b3ull;
  }
  return h;
}

// The SplitMix64 finalizer: a bijective 64-bit mixer.
constexpr uint64_t Mix64(uint64_t z) {
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

class Rng {
 public:
  // A stream keyed by (seed, purpose, a, b). Two streams with any key part
  // different are independent for all practical purposes.
  // Inline, so that a constant purpose string hashes at compile time: the
  // engine makes a few streams per task.
  constexpr Rng(uint64_t seed, std::string_view purpose, uint64_t a = 0, uint64_t b = 0)
      : key_(Mix64(Mix64(Mix64(seed ^ 0x6a09e667f3bcc909ull) ^ HashString(purpose)) ^
                   Mix64(a + 0x3c6ef372fe94f82bull)) ^
             Mix64(b ^ 0xa54ff53a5f1d36f1ull)) {}

  // Derives an independent child stream (e.g. one per epoch inside a task).
  Rng Fork(uint64_t c) const;

  uint64_t NextU64();
  // Uniform in [0, 1), 53 random bits.
  double Uniform();
  double Uniform(double lo, double hi) { return lo + (hi - lo) * Uniform(); }
  // Uniform integer in [0, n). REQUIRES: n > 0. Unbiased (rejection).
  uint64_t UniformInt(uint64_t n);
  bool Bernoulli(double p) { return Uniform() < p; }
  // Standard normal (Box-Muller; one pair of uniforms per draw).
  double Normal();
  double Normal(double mean, double stddev) { return mean + stddev * Normal(); }
  // exp(Normal(mu, sigma)).
  double LogNormal(double mu, double sigma);
  // Gamma(shape, 1) by Marsaglia-Tsang; shape < 1 via the boost x * U^(1/shape).
  // REQUIRES: shape > 0.
  double Gamma(double shape);
  // Dirichlet(alpha) of the given size. REQUIRES: every alpha > 0.
  std::vector<double> Dirichlet(std::span<const double> alpha);
  std::vector<double> DirichletSymmetric(double alpha, size_t n);

  // Fisher-Yates shuffle.
  template <typename T>
  void Shuffle(std::span<T> v) {
    for (size_t i = v.size(); i > 1; --i) {
      size_t j = UniformInt(i);
      std::swap(v[i - 1], v[j]);
    }
  }
  template <typename T>
  void Shuffle(std::vector<T>& v) {
    Shuffle(std::span<T>(v));
  }

  // k distinct integers from [0, n), in the order drawn (Floyd's algorithm,
  // O(k) expected work, independent of n). REQUIRES: k <= n.
  std::vector<uint64_t> SampleWithoutReplacement(uint64_t n, uint64_t k);

  uint64_t key() const { return key_; }
  // 64-bit words drawn from this stream so far (tests use it to check that
  // code that should be random does draw).
  uint64_t draws() const { return counter_; }

 private:
  constexpr explicit Rng(uint64_t key) : key_(key) {}
  uint64_t key_;
  uint64_t counter_ = 0;
};

}  // namespace fedsim

#endif  // FEDSIM_UTIL_RNG_H_
