// Selu (opset 6+): gamma x for x > 0, gamma alpha (e^x - 1) otherwise, with the self-normalizing
// constants as defaults.
#include <cmath>

#include "kiln/ops/common/elementwise.h"

namespace kiln {
namespace {
struct SeluFn {
  explicit SeluFn(const ir::Node& node)
      : alpha(node.attr_float("alpha", 1.67326319217681884765625f)),
        gamma(node.attr_float("gamma", 1.05070102214813232421875f)) {}
  template <typename T>
  T operator()(T x) const { return x > T(0) ? T(gamma) * x : T(gamma) * T(alpha) * std::expm1(x); }
  float alpha, gamma;
};
const OpRegistration kSelu{"", "Selu", 6, make_kernel<Unary<SeluFn, AllFloatTypes>>};
}  // namespace
}  // namespace kiln
