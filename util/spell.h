// "Did you mean ...?" suggestions for unknown names (ninja's spell-check habit).
#ifndef FEDSIM_UTIL_SPELL_H_
#define FEDSIM_UTIL_SPELL_H_

#include <span>
#include <string>
#include <string_view>

namespace fedsim {

// Levenshtein distance (insert, delete, substitute each cost 1).
int EditDistance(std::string_view a, std::string_view b);

// The closest candidate within max(2, |name|/3) edits, or "" if none is close.
std::string SpellCheck(std::string_view name, std::span<const std::string_view> candidates);

// " (did you mean 'x'?)" or "" — ready to append to an error message.
std::string DidYouMean(std::string_view name, std::span<const std::string_view> candidates);

}  // namespace fedsim

#endif  // FEDSIM_UTIL_SPELL_H_
