// Sub: numpy-broadcast difference (opset 7+). Integers wrap around on overflow.
#include "kiln/ops/common/elementwise.h"

namespace kiln {
namespace {
struct SubFn {
  template <typename T>
  T operator()(T a, T b) const {
    if constexpr (std::is_integral_v<T>) return T(wrap_uint_t<T>(a) - wrap_uint_t<T>(b));
    else return a - b;
  }
};
const OpRegistration kSub{"Sub", make_kernel<Binary<SubFn, AllNumericTypes>>};
}  // namespace
}  // namespace kiln
