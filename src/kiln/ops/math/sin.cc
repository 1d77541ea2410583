// Sin: sine, elementwise on float, double, float16 and bfloat16 (opset 7+).
#include <cmath>

#include "kiln/ops/common/elementwise.h"

namespace kiln {
namespace {
struct SinFn {
  template <typename T>
  T operator()(T x) const { return std::sin(x); }
};
const OpRegistration kSin{"", "Sin", 7, make_kernel<Unary<SinFn, AllFloatTypes>>};
}  // namespace
}  // namespace kiln
