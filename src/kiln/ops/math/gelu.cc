// Gelu (opset 20): x Phi(x) with approximate="none" (the exact erf form) or "tanh"
// (0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))), on float, double, float16 and bfloat16.
// Float runs on the vectorized fastmath path.
#include <cmath>

#include "kiln/ops/common/elementwise.h"
#include "kiln/ops/math/fast_math.h"

namespace kiln {
namespace {
struct GeluFn {
  explicit GeluFn(const ir::Node& node) {
    const std::string a = node.attr_string("approximate", "none");
    if (a != "none" && a != "tanh")
      fail(ErrorCode::InvalidGraph, "approximate must be 'none' or 'tanh', got '", a, "'");
    tanh = a == "tanh";
  }
  template <typename T>
  T operator()(T x) const {
    // 1 + erf(x/sqrt2) = erfc(-x/sqrt2) and 1 + tanh(z) = 2 sigmoid(2z) avoid the cancellation
    // of the textbook forms for negative x.
    if (tanh) {
      const T z = T(1.5957691216057308) * (x + T(0.044715) * x * x * x);
      const T e = std::exp(-std::fabs(z));
      const T r = T(1) / (T(1) + e);
      return x * (z >= 0 ? r : e * r);
    }
    return T(0.5) * x * std::erfc(-x * T(0.70710678118654752));
  }
  void apply(const float* x, float* y, int64_t n) const {
    if (tanh) fastmath::gelu_tanh(x, y, n);
    else fastmath::gelu(x, y, n);
  }
  bool tanh;
};
const OpRegistration kGelu{"", "Gelu", 20, make_kernel<Unary<GeluFn, AllFloatTypes>>};
}  // namespace
}  // namespace kiln
