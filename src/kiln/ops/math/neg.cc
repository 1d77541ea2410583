// Neg: -x on float, double, float16, bfloat16 and signed integers (opset 6+). The most negative
// integer maps to itself, as in numpy.
#include "kiln/ops/common/elementwise.h"

namespace kiln {
namespace {
struct NegFn {
  template <typename T>
  T operator()(T x) const {
    if constexpr (std::is_integral_v<T>) return T(wrap_uint_t<T>(0) - wrap_uint_t<T>(x));
    else return -x;
  }
};
const OpRegistration kNeg{"", "Neg", 6, make_kernel<Unary<NegFn, SignedNumericTypes>>};
}  // namespace
}  // namespace kiln
