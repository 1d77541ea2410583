// HardSigmoid (opset 6+): max(0, min(1, alpha x + beta)), alpha 0.2 and beta 0.5 by default.
#include "kiln/ops/common/elementwise.h"

namespace kiln {
namespace {
struct HardSigmoidFn {
  explicit HardSigmoidFn(const ir::Node& node)
      : alpha(node.attr_float("alpha", 0.2f)), beta(node.attr_float("beta", 0.5f)) {}
  template <typename T>
  T operator()(T x) const {
    const T v = T(alpha) * x + T(beta);
    return v < T(0) ? T(0) : v > T(1) ? T(1) : v;  // NaN passes through
  }
  float alpha, beta;
};
const OpRegistration kHardSigmoid{"", "HardSigmoid", 6, make_kernel<Unary<HardSigmoidFn, AllFloatTypes>>};
}  // namespace
}  // namespace kiln
