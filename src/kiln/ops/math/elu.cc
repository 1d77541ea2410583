// Elu (opset 6+): x for x >= 0, alpha (e^x - 1) below; alpha defaults to 1.
#include <cmath>

#include "kiln/ops/common/elementwise.h"

namespace kiln {
namespace {
struct EluFn {
  explicit EluFn(const ir::Node& node) : alpha(node.attr_float("alpha", 1.0f)) {}
  template <typename T>
  T operator()(T x) const { return x >= T(0) ? x : T(alpha) * std::expm1(x); }
  float alpha;
};
const OpRegistration kElu{"", "Elu", 6, make_kernel<Unary<EluFn, AllFloatTypes>>};
}  // namespace
}  // namespace kiln
