// Asinh: inverse hyperbolic sine, elementwise on float, double, float16 and bfloat16 (opset 9+).
#include <cmath>

#include "kiln/ops/common/elementwise.h"

namespace kiln {
namespace {
struct AsinhFn {
  template <typename T>
  T operator()(T x) const { return std::asinh(x); }
};
const OpRegistration kAsinh{"", "Asinh", 9, make_kernel<Unary<AsinhFn, AllFloatTypes>>};
}  // namespace
}  // namespace kiln
