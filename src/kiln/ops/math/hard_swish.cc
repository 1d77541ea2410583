// HardSwish (opset 14): x max(0, min(1, x/6 + 1/2)).
#include "kiln/ops/common/elementwise.h"

namespace kiln {
namespace {
struct HardSwishFn {
  template <typename T>
  T operator()(T x) const {
    const T v = x * T(1.0 / 6.0) + T(0.5);
    return x * (v < T(0) ? T(0) : v > T(1) ? T(1) : v);
  }
};
const OpRegistration kHardSwish{"", "HardSwish", 14, make_kernel<Unary<HardSwishFn, AllFloatTypes>>};
}  // namespace
}  // namespace kiln
