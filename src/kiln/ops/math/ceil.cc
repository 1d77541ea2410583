// Ceil: rounds up, elementwise on float, double, float16 and bfloat16 (opset 6+).
#include <cmath>

#include "kiln/ops/common/elementwise.h"
#include "kiln/ops/math/fast_math.h"

namespace kiln {
namespace {
struct CeilFn {
  template <typename T>
  T operator()(T x) const { return std::ceil(x); }
  void apply(const float* x, float* y, int64_t n) const { fastmath::ceil(x, y, n); }
};
const OpRegistration kCeil{"", "Ceil", 6, make_kernel<Unary<CeilFn, AllFloatTypes>>};
}  // namespace
}  // namespace kiln
