// Div: numpy-broadcast quotient (opset 7+). Integer division truncates toward zero as in C;
// a zero integer divisor fails the run instead of trapping.
#include "kiln/ops/math/integer_division.h"

namespace kiln {
namespace {
struct DivFn {
  template <typename T>
  T operator()(T a, T b) const {
    if constexpr (std::is_integral_v<T> && sizeof(T) <= 4) {
      // Exact through double, and vectorizable where integer division is not: a quotient that is
      // not an integer lies at least 1/|b| from one, far beyond the rounding error |a/b| 2^-53.
      // INT_MIN / -1 gives 2^31, which wraps back to INT_MIN.
      return T(int64_t(double(a) / double(b)));
    } else if constexpr (std::is_integral_v<T>) {
      const T q = T(a / safe_divisor(b));
      if constexpr (std::is_signed_v<T>) return b == T(-1) ? wrapping_neg(q) : q;
      else return q;
    } else {
      return a / b;
    }
  }
  template <typename T>
  void check(const Tensor&, const Tensor& b) const { check_integer_divisor<T>(b); }
};
const OpRegistration kDiv{"Div", make_kernel<Binary<DivFn, AllNumericTypes>>};
}  // namespace
}  // namespace kiln
