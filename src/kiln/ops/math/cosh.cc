// Cosh: hyperbolic cosine, elementwise on float, double, float16 and bfloat16 (opset 9+).
#include <cmath>

#include "kiln/ops/common/elementwise.h"

namespace kiln {
namespace {
struct CoshFn {
  template <typename T>
  T operator()(T x) const { return std::cosh(x); }
};
const OpRegistration kCosh{"", "Cosh", 9, make_kernel<Unary<CoshFn, AllFloatTypes>>};
}  // namespace
}  // namespace kiln
