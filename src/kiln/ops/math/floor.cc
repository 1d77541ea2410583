// Floor: rounds down, elementwise on float, double, float16 and bfloat16 (opset 6+).
#include <cmath>

#include "kiln/ops/common/elementwise.h"
#include "kiln/ops/math/fast_math.h"

namespace kiln {
namespace {
struct FloorFn {
  template <typename T>
  T operator()(T x) const { return std::floor(x); }
  void apply(const float* x, float* y, int64_t n) const { fastmath::floor(x, y, n); }
};
const OpRegistration kFloor{"", "Floor", 6, make_kernel<Unary<FloorFn, AllFloatTypes>>};
}  // namespace
}  // namespace kiln
