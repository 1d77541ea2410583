// Add: numpy-broadcast sum (opset 7+; older opsets' axis/broadcast attributes are not here).
// Integers wrap around on overflow.
#include "kiln/ops/common/elementwise.h"

namespace kiln {
namespace {
struct AddFn {
  template <typename T>
  T operator()(T a, T b) const {
    if constexpr (std::is_integral_v<T>) return T(wrap_uint_t<T>(a) + wrap_uint_t<T>(b));
    else return a + b;
  }
};
const OpRegistration kAdd{"Add", make_kernel<Binary<AddFn, AllNumericTypes>>};
}  // namespace
}  // namespace kiln
