#include "util/spell.h"

#include <algorithm>
#include <vector>

namespace fedsim {

int EditDistance(std::string_view a, std::string_view b) {
  std::vector<int> prev(b.size() + 1), cur(b.size() + 1);
  for (size_t j = 0; j <= b.size(); ++j) prev[j] = static_cast<int>(j);
  for (size_t i = 1; i <= a.size(); ++i) {
    cur[0] = static_cast<int>(i);
    for (size_t j = 1; j <= b.size(); ++j) {
      int sub = prev[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1);
      cur[j] = std::min({prev[j] + 1, cur[j - 1] + 1, sub});
    }
    std::swap(prev, cur);
  }
  return prev[b.size()];
}

std::string SpellCheck(std::string_view name, std::span<const std::string_view> candidates) {
  const int limit = std::max<int>(2, static_cast<int>(name.size()) / 3);
  int best = limit + 1;
  std::string_view best_name;
  for (std::string_view c : candidates) {
    int d = EditDistance(name, c);
    if (d < best) {
      best = d;
      best_name = c;
    }
  }
  return best <= limit ? std::string(best_name) : std::string();
}

std::string DidYouMean(std::string_view name, std::span<const std::string_view> candidates) {
  std::string s = SpellCheck(name, candidates);
  return s.empty() ? std::string() : " (did you mean '" + s + "'?)";
}

}  // namespace fedsim
