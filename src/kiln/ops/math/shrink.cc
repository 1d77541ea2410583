// Shrink (opset 9): y = x - bias if x > lambd, x + bias if x < -lambd, else 0 (lambd 0.5 and
// bias 0 by default), for every numeric type; integer results are the double result rounded
// toward zero and clamped to the type's range.
#include <limits>

#include "kiln/ops/common/elementwise.h"

namespace kiln {
namespace {

struct ShrinkFn {
  explicit ShrinkFn(const ir::Node& node) : lambd(node.attr_float("lambd", 0.5f)), bias(node.attr_float("bias", 0.0f)) {}
  template <typename T>
  T operator()(T x) const {
    const double v = double(x);
    const double r = v < -lambd ? v + bias : v > lambd ? v - bias : 0.0;
    if constexpr (std::is_integral_v<T>) {
      // double(max) of a 64-bit type rounds up to 2^63 or 2^64, so the upper test is >=.
      if (r >= double(std::numeric_limits<T>::max())) return std::numeric_limits<T>::max();
      if (r <= double(std::numeric_limits<T>::lowest())) return std::numeric_limits<T>::lowest();
    }
    return T(r);
  }
  double lambd, bias;
};

const OpRegistration kShrink{"", "Shrink", 9, make_kernel<Unary<ShrinkFn, AllNumericTypes>>};

}  // namespace
}  // namespace kiln
