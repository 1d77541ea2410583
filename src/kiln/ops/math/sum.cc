// Sum: elementwise sum of 1..N inputs with numpy broadcasting (opset 8+).
#include "kiln/ops/common/elementwise.h"

namespace kiln {
namespace {
struct SumFn {
  template <typename T>
  T operator()(T a, T b) const {
    if constexpr (std::is_integral_v<T>) return T(wrap_uint_t<T>(a) + wrap_uint_t<T>(b));
    else return a + b;
  }
};
const OpRegistration kSum{"Sum", make_kernel<Variadic<SumFn, AllNumericTypes>>};
}  // namespace
}  // namespace kiln
