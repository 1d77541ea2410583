// BitwiseOr (opset 18): a | b on integers, with numpy broadcasting.
#include "kiln/ops/common/elementwise.h"

namespace kiln {
namespace {
struct BitwiseOrFn {
  template <typename T>
  T operator()(T a, T b) const { return T(a | b); }
};
const OpRegistration kBitwiseOr{"", "BitwiseOr", 18, make_kernel<Binary<BitwiseOrFn, IntTypes>>};
}  // namespace
}  // namespace kiln
