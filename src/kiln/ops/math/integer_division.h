// Integer division helpers shared by Div and Mod: C's `/` and `%` trap on a zero divisor and on
// INT_MIN / -1, so kernels check divisors before their loops and route -1 around the trap.
#pragma once

#include <type_traits>

#include "kiln/ops/common/elementwise.h"

namespace kiln {

// Fails with a clear message when an integer divisor holds a zero (floats divide to inf/NaN).
template <typename T>
void check_integer_divisor(const Tensor& divisor) {
  if constexpr (std::is_integral_v<T>) {
    const T* p = divisor.data<T>();
    const int64_t n = divisor.size();
    bool zero = false;
#pragma omp simd reduction(| : zero)
    for (int64_t i = 0; i < n; ++i) zero |= p[i] == T(0);
    if (zero) fail(ErrorCode::InvalidArgument, "integer division by zero: the divisor (input 1) holds a 0");
  }
}

// The divisor with -1 replaced by 1: a / 1 and a % 1 never trap, and the callers fix the sign.
template <typename T>
T safe_divisor(T b) {
  if constexpr (std::is_signed_v<T>) return b == T(-1) ? T(1) : b;
  else return b;
}

// -a with two's complement wrap-around (-INT_MIN is INT_MIN, as numpy gives).
template <typename T>
T wrapping_neg(T a) {
  if constexpr (std::is_integral_v<T>) return T(std::make_unsigned_t<T>(0) - std::make_unsigned_t<T>(a));
  else return -a;
}

}  // namespace kiln
