// Acos: arccosine (NaN outside [-1, 1]), elementwise on float, double, float16 and bfloat16 (opset
// 7+).
#include <cmath>

#include "kiln/ops/common/elementwise.h"

namespace kiln {
namespace {
struct AcosFn {
  template <typename T>
  T operator()(T x) const { return std::acos(x); }
};
const OpRegistration kAcos{"", "Acos", 7, make_kernel<Unary<AcosFn, AllFloatTypes>>};
}  // namespace
}  // namespace kiln
