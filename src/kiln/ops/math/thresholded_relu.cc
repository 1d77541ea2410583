// ThresholdedRelu (opset 10): x where x > alpha, 0 elsewhere; alpha defaults to 1.
#include "kiln/ops/common/elementwise.h"

namespace kiln {
namespace {
struct ThresholdedReluFn {
  explicit ThresholdedReluFn(const ir::Node& node) : alpha(node.attr_float("alpha", 1.0f)) {}
  template <typename T>
  T operator()(T x) const { return x > T(alpha) ? x : T(0); }
  float alpha;
};
const OpRegistration kThresholdedRelu{"", "ThresholdedRelu", 10,
                                      make_kernel<Unary<ThresholdedReluFn, AllFloatTypes>>};
}  // namespace
}  // namespace kiln
