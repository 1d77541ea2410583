// Erf: the error function, elementwise on float, double, float16 and bfloat16 (opset 9+). Float
// runs on the vectorized fastmath path.
#include <cmath>

#include "kiln/ops/common/elementwise.h"
#include "kiln/ops/math/fast_math.h"

namespace kiln {
namespace {
struct ErfFn {
  template <typename T>
  T operator()(T x) const { return std::erf(x); }
  void apply(const float* x, float* y, int64_t n) const { fastmath::erf(x, y, n); }
};
const OpRegistration kErf{"", "Erf", 9, make_kernel<Unary<ErfFn, AllFloatTypes>>};
}  // namespace
}  // namespace kiln
