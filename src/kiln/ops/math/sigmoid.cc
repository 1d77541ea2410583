// Sigmoid: 1 / (1 + e^-x), elementwise on float, double, float16 and bfloat16 (opset 6+).
// Float runs on the vectorized fastmath path.
#include <cmath>

#include "kiln/ops/common/elementwise.h"
#include "kiln/ops/math/fast_math.h"

namespace kiln {
namespace {
struct SigmoidFn {
  template <typename T>
  T operator()(T x) const {
    // e^-|x| never overflows, and e / (1 + e) keeps the negative tail's relative precision.
    const T e = std::exp(-std::fabs(x));
    const T r = T(1) / (T(1) + e);
    return x >= 0 ? r : e * r;
  }
  void apply(const float* x, float* y, int64_t n) const { fastmath::sigmoid(x, y, n); }
};
const OpRegistration kSigmoid{"", "Sigmoid", 6, make_kernel<Unary<SigmoidFn, AllFloatTypes>>};
}  // namespace
}  // namespace kiln
