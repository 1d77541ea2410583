// LeakyRelu (opset 6+): x for x >= 0, alpha x below; alpha defaults to 0.01.
#include "kiln/ops/common/elementwise.h"

namespace kiln {
namespace {
struct LeakyReluFn {
  explicit LeakyReluFn(const ir::Node& node) : alpha(node.attr_float("alpha", 0.01f)) {}
  template <typename T>
  T operator()(T x) const { return x >= T(0) ? x : T(alpha) * x; }
  float alpha;
};
const OpRegistration kLeakyRelu{"", "LeakyRelu", 6, make_kernel<Unary<LeakyReluFn, AllFloatTypes>>};
}  // namespace
}  // namespace kiln
