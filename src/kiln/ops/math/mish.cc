// Mish (opset 18): x tanh(softplus(x)).
#include <cmath>

#include "kiln/ops/common/elementwise.h"

namespace kiln {
namespace {
struct MishFn {
  template <typename T>
  T operator()(T x) const {
    const T softplus = x > T(0) ? x + std::log1p(std::exp(-x)) : std::log1p(std::exp(x));
    return x * std::tanh(softplus);
  }
};
const OpRegistration kMish{"", "Mish", 18, make_kernel<Unary<MishFn, AllFloatTypes>>};
}  // namespace
}  // namespace kiln
