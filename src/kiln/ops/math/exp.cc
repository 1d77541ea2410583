// Exp: e^x, elementwise on float, double, float16 and bfloat16 (opset 6+). Float runs on the
// vectorized fastmath path.
#include <cmath>

#include "kiln/ops/common/elementwise.h"
#include "kiln/ops/math/fast_math.h"

namespace kiln {
namespace {
struct ExpFn {
  template <typename T>
  T operator()(T x) const { return std::exp(x); }
  void apply(const float* x, float* y, int64_t n) const { fastmath::exp(x, y, n); }
};
const OpRegistration kExp{"", "Exp", 6, make_kernel<Unary<ExpFn, AllFloatTypes>>};
}  // namespace
}  // namespace kiln
