// Cos: cosine, elementwise on float, double, float16 and bfloat16 (opset 7+).
#include <cmath>

#include "kiln/ops/common/elementwise.h"

namespace kiln {
namespace {
struct CosFn {
  template <typename T>
  T operator()(T x) const { return std::cos(x); }
};
const OpRegistration kCos{"", "Cos", 7, make_kernel<Unary<CosFn, AllFloatTypes>>};
}  // namespace
}  // namespace kiln
