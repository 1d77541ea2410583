// Sinh: hyperbolic sine, elementwise on float, double, float16 and bfloat16 (opset 9+).
#include <cmath>

#include "kiln/ops/common/elementwise.h"

namespace kiln {
namespace {
struct SinhFn {
  template <typename T>
  T operator()(T x) const { return std::sinh(x); }
};
const OpRegistration kSinh{"", "Sinh", 9, make_kernel<Unary<SinhFn, AllFloatTypes>>};
}  // namespace
}  // namespace kiln
