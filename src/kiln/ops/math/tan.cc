// Tan: tangent, elementwise on float, double, float16 and bfloat16 (opset 7+).
#include <cmath>

#include "kiln/ops/common/elementwise.h"

namespace kiln {
namespace {
struct TanFn {
  template <typename T>
  T operator()(T x) const { return std::tan(x); }
};
const OpRegistration kTan{"", "Tan", 7, make_kernel<Unary<TanFn, AllFloatTypes>>};
}  // namespace
}  // namespace kiln
