// IdleSet: the set of client ids that are idle and available, so rules can
// sample a few clients from a fleet of 1,000,000 in O(log N) per draw
// (FleetView::nth_idle_available).
//
// Layout: one bit per client (125 KB at 10^6 clients) and a Fenwick tree of
// the population counts of the 64-bit words (one uint32 per 64 clients, 62 KB
// at 10^6). Both stay in L2 at a million clients, where a Fenwick tree over
// the clients themselves (4 MB) took a cache miss per level of every draw
// and every update.
//
// Not thread-safe; the engine's.
#ifndef FEDSIM_SIM_IDLE_SET_H_
#define FEDSIM_SIM_IDLE_SET_H_

#include <bit>
#include <cstddef>
#include <cstdint>
#include <vector>

namespace fedsim {

class IdleSet {
 public:
  explicit IdleSet(size_t n) : words_((n + 63) / 64, 0), tree_(words_.size() + 1, 0) {
    for (size_t step = 1; step <= words_.size(); step <<= 1) log_ = step;
  }
  bool contains(size_t i) const { return (words_[i >> 6] >> (i & 63)) & 1; }
  size_t size() const { return size_; }
  void Insert(size_t i) {
    const uint64_t bit = uint64_t{1} << (i & 63);
    uint64_t& word = words_[i >> 6];
    if (word & bit) return;
    word |= bit;
    ++size_;
    for (size_t j = (i >> 6) + 1; j < tree_.size(); j += j & (~j + 1)) tree_[j]++;
  }
  void Erase(size_t i) {
    const uint64_t bit = uint64_t{1} << (i & 63);
    uint64_t& word = words_[i >> 6];
    if (!(word & bit)) return;
    word &= ~bit;
    --size_;
    for (size_t j = (i >> 6) + 1; j < tree_.size(); j += j & (~j + 1)) tree_[j]--;
  }
  // The k-th smallest member (0-based). REQUIRES: k < size().
  size_t Nth(size_t k) const {
    // The word holding it: the Fenwick descent over word counts.
    size_t pos = 0;
    uint32_t rem = static_cast<uint32_t>(k) + 1;
    for (size_t step = log_; step > 0; step >>= 1) {
      if (pos + step < tree_.size() && tree_[pos + step] < rem) {
        pos += step;
        rem -= tree_[pos];
      }
    }
    // Word `pos` (0-based) holds it as its rem-th set bit: skip whole bytes,
    // then bits.
    uint64_t word = words_[pos];
    unsigned base = 0;
    for (;;) {
      const auto in_byte = static_cast<uint32_t>(std::popcount(word & 0xff));
      if (in_byte >= rem) break;
      rem -= in_byte;
      word >>= 8;
      base += 8;
    }
    for (uint32_t r = 1; r < rem; ++r) word &= word - 1;  // drop the lower members
    return pos * 64 + base + static_cast<size_t>(std::countr_zero(word));
  }

 private:
  std::vector<uint64_t> words_;
  std::vector<uint32_t> tree_;  // 1-based Fenwick tree over popcount(words_[i])
  size_t size_ = 0;
  size_t log_ = 0;
};

}  // namespace fedsim

#endif  // FEDSIM_SIM_IDLE_SET_H_
