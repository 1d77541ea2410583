// Sqrt: square root (NaN below 0), elementwise on float, double, float16 and bfloat16 (opset 6+).
// Float runs on the vectorized fastmath path.
#include <cmath>

#include "kiln/ops/common/elementwise.h"
#include "kiln/ops/math/fast_math.h"

namespace kiln {
namespace {
struct SqrtFn {
  template <typename T>
  T operator()(T x) const { return std::sqrt(x); }
  void apply(const float* x, float* y, int64_t n) const { fastmath::sqrt(x, y, n); }
};
const OpRegistration kSqrt{"", "Sqrt", 6, make_kernel<Unary<SqrtFn, AllFloatTypes>>};
}  // namespace
}  // namespace kiln
