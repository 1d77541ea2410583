// Atan: arctangent, elementwise on float, double, float16 and bfloat16 (opset 7+).
#include <cmath>

#include "kiln/ops/common/elementwise.h"

namespace kiln {
namespace {
struct AtanFn {
  template <typename T>
  T operator()(T x) const { return std::atan(x); }
};
const OpRegistration kAtan{"", "Atan", 7, make_kernel<Unary<AtanFn, AllFloatTypes>>};
}  // namespace
}  // namespace kiln
