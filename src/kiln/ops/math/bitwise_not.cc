// BitwiseNot (opset 18): ~x on integers.
#include "kiln/ops/common/elementwise.h"

namespace kiln {
namespace {
struct BitwiseNotFn {
  template <typename T>
  T operator()(T x) const { return T(~x); }
};
const OpRegistration kBitwiseNot{"", "BitwiseNot", 18, make_kernel<Unary<BitwiseNotFn, IntTypes>>};
}  // namespace
}  // namespace kiln
