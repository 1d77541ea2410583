// Acosh: inverse hyperbolic cosine (NaN below 1), elementwise on float, double, float16 and
// bfloat16 (opset 9+).
#include <cmath>

#include "kiln/ops/common/elementwise.h"

namespace kiln {
namespace {
struct AcoshFn {
  template <typename T>
  T operator()(T x) const { return std::acosh(x); }
};
const OpRegistration kAcosh{"", "Acosh", 9, make_kernel<Unary<AcoshFn, AllFloatTypes>>};
}  // namespace
}  // namespace kiln
