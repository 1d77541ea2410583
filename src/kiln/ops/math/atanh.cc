// Atanh: inverse hyperbolic tangent (NaN outside [-1, 1]), elementwise on float, double, float16
// and bfloat16 (opset 9+).
#include <cmath>

#include "kiln/ops/common/elementwise.h"

namespace kiln {
namespace {
struct AtanhFn {
  template <typename T>
  T operator()(T x) const { return std::atanh(x); }
};
const OpRegistration kAtanh{"", "Atanh", 9, make_kernel<Unary<AtanhFn, AllFloatTypes>>};
}  // namespace
}  // namespace kiln
