// Result vocabulary shared by every module: boost::system::error_code + boost::system::result<T>.
//
// Fallible calls return Result<T>; KAKEHASHI_TRY(x, expr) assigns the value or returns the error.
// Exceptions are reserved for bugs (KAKEHASHI_ASSERT) and start-up configuration.
#pragma once

#include <boost/system/error_code.hpp>
#include <boost/system/result.hpp>

#include <cstdio>
#include <cstdlib>

namespace kakehashi {

template <class T>
using Result = boost::system::result<T, boost::system::error_code>;
using ErrorCode = boost::system::error_code;

namespace detail {
[[noreturn]] inline void AssertFail(const char* expr, const char* file, int line) {
  std::fprintf(stderr, "kakehashi: internal assertion failed: %s at %s:%d\n", expr, file, line);
  std::abort();
}
}  // namespace detail

}  // namespace kakehashi

#define KAKEHASHI_CONCAT_INNER(a, b) a##b
#define KAKEHASHI_CONCAT(a, b) KAKEHASHI_CONCAT_INNER(a, b)

// KAKEHASHI_TRY(auto x, expr): evaluates expr (a Result<T>); on error returns the error from the
// enclosing function (whose return type must be constructible from error_code), else binds x.
#define KAKEHASHI_TRY_IMPL(tmp, decl, expr) \
  auto tmp = (expr);                        \
  if (!tmp) return tmp.error();             \
  decl = std::move(*tmp)
#define KAKEHASHI_TRY(decl, expr) \
  KAKEHASHI_TRY_IMPL(KAKEHASHI_CONCAT(kakehashi_try_, __LINE__), decl, expr)

// KAKEHASHI_TRY_VOID(expr): for Result<void>.
#define KAKEHASHI_TRY_VOID(expr)                                  \
  do {                                                            \
    auto kakehashi_try_void_ = (expr);                            \
    if (!kakehashi_try_void_) return kakehashi_try_void_.error(); \
  } while (false)

// Bugs only: never for user input.
#define KAKEHASHI_ASSERT(expr) \
  ((expr) ? static_cast<void>(0) : ::kakehashi::detail::AssertFail(#expr, __FILE__, __LINE__))
