// Tanh: hyperbolic tangent, elementwise on float, double, float16 and bfloat16 (opset 6+). Float
// runs on the vectorized fastmath path.
#include <cmath>

#include "kiln/ops/common/elementwise.h"
#include "kiln/ops/math/fast_math.h"

namespace kiln {
namespace {
struct TanhFn {
  template <typename T>
  T operator()(T x) const { return std::tanh(x); }
  void apply(const float* x, float* y, int64_t n) const { fastmath::tanh(x, y, n); }
};
const OpRegistration kTanh{"", "Tanh", 6, make_kernel<Unary<TanhFn, AllFloatTypes>>};
}  // namespace
}  // namespace kiln
