// Round: rounds to the nearest integer, halves to even, elementwise on float, double, float16 and
// bfloat16 (opset 11+).
#include <cmath>

#include "kiln/ops/common/elementwise.h"

namespace kiln {
namespace {
struct RoundFn {
  template <typename T>
  // nearbyint rounds in the default mode, to nearest with halves to even (2.5 -> 2).
  T operator()(T x) const { return std::nearbyint(x); }
};
const OpRegistration kRound{"", "Round", 11, make_kernel<Unary<RoundFn, AllFloatTypes>>};
}  // namespace
}  // namespace kiln
