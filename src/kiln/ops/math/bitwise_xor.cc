// BitwiseXor (opset 18): a ^ b on integers, with numpy broadcasting.
#include "kiln/ops/common/elementwise.h"

namespace kiln {
namespace {
struct BitwiseXorFn {
  template <typename T>
  T operator()(T a, T b) const { return T(a ^ b); }
};
const OpRegistration kBitwiseXor{"", "BitwiseXor", 18, make_kernel<Binary<BitwiseXorFn, IntTypes>>};
}  // namespace
}  // namespace kiln
