// Celu (opset 12): max(0, x) + min(0, alpha (e^(x/alpha) - 1)); alpha defaults to 1.
#include <cmath>

#include "kiln/ops/common/elementwise.h"

namespace kiln {
namespace {
struct CeluFn {
  explicit CeluFn(const ir::Node& node) : alpha(node.attr_float("alpha", 1.0f)) {
    if (alpha == 0) fail(ErrorCode::InvalidGraph, "alpha must not be 0");
  }
  template <typename T>
  T operator()(T x) const { return x >= T(0) ? x : T(alpha) * std::expm1(x / T(alpha)); }
  float alpha;
};
const OpRegistration kCelu{"", "Celu", 12, make_kernel<Unary<CeluFn, AllFloatTypes>>};
}  // namespace
}  // namespace kiln
