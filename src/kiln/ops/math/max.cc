// Max: elementwise maximum of 1..N inputs with numpy broadcasting (opset 8+; 12+ for integers).
// A NaN in any input gives NaN, as numpy's maximum.
#include "kiln/ops/common/elementwise.h"

namespace kiln {
namespace {
struct MaxFn {
  template <typename T>
  T operator()(T a, T b) const { return (a > b || a != a) ? a : b; }
};
const OpRegistration kMax{"Max", make_kernel<Variadic<MaxFn, AllNumericTypes>>};
}  // namespace
}  // namespace kiln
