// Sign (opset 9+): -1, 0 or 1 by the sign of x, on every numeric type; NaN stays NaN.
#include "kiln/ops/common/elementwise.h"

namespace kiln {
namespace {
struct SignFn {
  template <typename T>
  T operator()(T x) const {
    if constexpr (std::is_floating_point_v<T>) return x > 0 ? T(1) : x < 0 ? T(-1) : x == 0 ? T(0) : x;
    else return T(T(x > 0) - T(x < 0));
  }
};
const OpRegistration kSign{"", "Sign", 9, make_kernel<Unary<SignFn, AllNumericTypes>>};
}  // namespace
}  // namespace kiln
