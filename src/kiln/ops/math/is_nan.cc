// IsNaN (opset 9+): true where x is NaN, on float, double, float16 and bfloat16.
#include "kiln/ops/common/elementwise.h"

namespace kiln {
namespace {
struct IsNaNFn {
  template <typename T>
  bool operator()(T x) const { return x != x; }
};
const OpRegistration kIsNaN{"", "IsNaN", 9, make_kernel<Unary<IsNaNFn, AllFloatTypes, bool>>};
}  // namespace
}  // namespace kiln
