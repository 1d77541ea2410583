// Reciprocal: 1 / x on float, double, float16 and bfloat16 (opset 6+).
#include "kiln/ops/common/elementwise.h"

namespace kiln {
namespace {
struct ReciprocalFn {
  template <typename T>
  T operator()(T x) const { return T(1) / x; }
};
const OpRegistration kReciprocal{"", "Reciprocal", 6, make_kernel<Unary<ReciprocalFn, AllFloatTypes>>};
}  // namespace
}  // namespace kiln
