// Small status helpers. Our Abseil (20220623) ships no status macros, so the
// project keeps these two, and nothing else, here.
#ifndef FEDSIM_UTIL_STATUS_MACROS_H_
#define FEDSIM_UTIL_STATUS_MACROS_H_

#include "absl/status/status.h"
#include "absl/status/statusor.h"

#define FEDSIM_CONCAT_INNER_(a, b) a##b
#define FEDSIM_CONCAT_(a, b) FEDSIM_CONCAT_INNER_(a, b)

// Returns from the enclosing function if `expr` (an absl::Status) is not OK.
#define FEDSIM_RETURN_IF_ERROR(expr)                 \
  do {                                               \
    ::absl::Status fedsim_status_ = (expr);          \
    if (!fedsim_status_.ok()) return fedsim_status_; \
  } while (0)

// `lhs` = value of `rexpr` (an absl::StatusOr<T>), or returns its status.
//   FEDSIM_ASSIGN_OR_RETURN(auto model, NewModel(config));
#define FEDSIM_ASSIGN_OR_RETURN(lhs, rexpr) \
  FEDSIM_ASSIGN_OR_RETURN_IMPL_(FEDSIM_CONCAT_(fedsim_statusor_, __LINE__), lhs, rexpr)

#define FEDSIM_ASSIGN_OR_RETURN_IMPL_(statusor, lhs, rexpr) \
  auto statusor = (rexpr);                                  \
  if (!statusor.ok()) return std::move(statusor).status();  \
  lhs = std::move(statusor).value()

#endif  // FEDSIM_UTIL_STATUS_MACROS_H_
