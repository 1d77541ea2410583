// Log: natural logarithm (-inf at 0, NaN below), elementwise on float, double, float16 and bfloat16
// (opset 6+). Float runs on the vectorized fastmath path.
#include <cmath>

#include "kiln/ops/common/elementwise.h"
#include "kiln/ops/math/fast_math.h"

namespace kiln {
namespace {
struct LogFn {
  template <typename T>
  T operator()(T x) const { return std::log(x); }
  void apply(const float* x, float* y, int64_t n) const { fastmath::log(x, y, n); }
};
const OpRegistration kLog{"", "Log", 6, make_kernel<Unary<LogFn, AllFloatTypes>>};
}  // namespace
}  // namespace kiln
