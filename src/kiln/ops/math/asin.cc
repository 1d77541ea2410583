// Asin: arcsine (NaN outside [-1, 1]), elementwise on float, double, float16 and bfloat16 (opset
// 7+).
#include <cmath>

#include "kiln/ops/common/elementwise.h"

namespace kiln {
namespace {
struct AsinFn {
  template <typename T>
  T operator()(T x) const { return std::asin(x); }
};
const OpRegistration kAsin{"", "Asin", 7, make_kernel<Unary<AsinFn, AllFloatTypes>>};
}  // namespace
}  // namespace kiln
