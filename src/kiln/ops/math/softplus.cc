// Softplus: log(1 + e^x), on float, double, float16 and bfloat16.
#include <cmath>

#include "kiln/ops/common/elementwise.h"

namespace kiln {
namespace {
struct SoftplusFn {
  template <typename T>
  T operator()(T x) const {
    // x + log1p(e^-x) for positive x: no overflow, and exact for large x.
    return x > T(0) ? x + std::log1p(std::exp(-x)) : std::log1p(std::exp(x));
  }
};
const OpRegistration kSoftplus{"Softplus", make_kernel<Unary<SoftplusFn, AllFloatTypes>>};
}  // namespace
}  // namespace kiln
