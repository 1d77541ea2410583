// Relu: max(x, 0) on float, double, float16, bfloat16 and (opset 14) signed integers; NaN
// stays NaN.
#include "kiln/ops/common/elementwise.h"

namespace kiln {
namespace {
struct ReluFn {
  template <typename T>
  T operator()(T x) const { return x < T(0) ? T(0) : x; }
};
const OpRegistration kRelu{"Relu", make_kernel<Unary<ReluFn, SignedNumericTypes>>};
}  // namespace
}  // namespace kiln
