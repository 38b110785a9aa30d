// IdleSet: the set of client ids that are idle and available, as a Fenwick
// tree, so rules can sample a few clients from a fleet of 1,000,000 in
// O(log N) per draw (FleetView::nth_idle_available).
//
// Not thread-safe; the engine's.
#ifndef FEDSIM_SIM_IDLE_SET_H_
#define FEDSIM_SIM_IDLE_SET_H_

#include <cstddef>
#include <cstdint>
#include <vector>

namespace fedsim {

class IdleSet {
 public:
  explicit IdleSet(size_t n) : tree_(n + 1, 0), member_(n, 0) {
    for (size_t step = 1; step <= n; step <<= 1) log_ = step;
  }
  bool contains(size_t i) const { return member_[i] != 0; }
  size_t size() const { return size_; }
  void Insert(size_t i) {
    if (member_[i]) return;
    member_[i] = 1;
    ++size_;
    for (size_t j = i + 1; j < tree_.size(); j += j & (~j + 1)) tree_[j]++;
  }
  void Erase(size_t i) {
    if (!member_[i]) return;
    member_[i] = 0;
    --size_;
    for (size_t j = i + 1; j < tree_.size(); j += j & (~j + 1)) tree_[j]--;
  }
  // The k-th smallest member (0-based). REQUIRES: k < size().
  size_t Nth(size_t k) const {
    size_t pos = 0;
    uint32_t rem = static_cast<uint32_t>(k) + 1;
    for (size_t step = log_; step > 0; step >>= 1) {
      if (pos + step < tree_.size() && tree_[pos + step] < rem) {
        pos += step;
        rem -= tree_[pos];
      }
    }
    return pos;  // 1-based pos+1 holds it; 0-based id = pos
  }

 private:
  std::vector<uint32_t> tree_;
  std::vector<uint8_t> member_;
  size_t size_ = 0;
  size_t log_ = 0;
};

}  // namespace fedsim

#endif  // FEDSIM_SIM_IDLE_SET_H_
