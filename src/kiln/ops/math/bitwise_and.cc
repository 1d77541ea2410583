// BitwiseAnd (opset 18): a & b on integers, with numpy broadcasting.
#include "kiln/ops/common/elementwise.h"

namespace kiln {
namespace {
struct BitwiseAndFn {
  template <typename T>
  T operator()(T a, T b) const { return T(a & b); }
};
const OpRegistration kBitwiseAnd{"", "BitwiseAnd", 18, make_kernel<Binary<BitwiseAndFn, IntTypes>>};
}  // namespace
}  // namespace kiln
