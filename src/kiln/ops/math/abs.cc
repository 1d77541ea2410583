// Abs: |x| on every numeric type (opset 6+). The most negative integer maps to itself, as in
// numpy.
#include <cmath>

#include "kiln/ops/common/elementwise.h"

namespace kiln {
namespace {
struct AbsFn {
  template <typename T>
  T operator()(T x) const {
    if constexpr (std::is_floating_point_v<T>) return std::fabs(x);
    else if constexpr (std::is_signed_v<T>) return x < 0 ? T(wrap_uint_t<T>(0) - wrap_uint_t<T>(x)) : x;
    else return x;
  }
};
const OpRegistration kAbs{"", "Abs", 6, make_kernel<Unary<AbsFn, AllNumericTypes>>};
}  // namespace
}  // namespace kiln
