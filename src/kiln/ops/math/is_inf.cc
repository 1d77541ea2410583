// IsInf (opset 10+): true where x is +inf (when detect_positive, default 1) or -inf (when
// detect_negative, default 1), on float, double, float16 and bfloat16.
#include <limits>

#include "kiln/ops/common/elementwise.h"

namespace kiln {
namespace {
struct IsInfFn {
  explicit IsInfFn(const ir::Node& node)
      : positive(node.attr_int("detect_positive", 1) != 0), negative(node.attr_int("detect_negative", 1) != 0) {}
  template <typename T>
  bool operator()(T x) const {
    return (positive && x == std::numeric_limits<T>::infinity()) ||
           (negative && x == -std::numeric_limits<T>::infinity());
  }
  bool positive, negative;
};
const OpRegistration kIsInf{"", "IsInf", 10, make_kernel<Unary<IsInfFn, AllFloatTypes, bool>>};
}  // namespace
}  // namespace kiln
