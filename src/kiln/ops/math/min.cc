// Min: elementwise minimum of 1..N inputs with numpy broadcasting (opset 8+; 12+ for integers).
// A NaN in any input gives NaN, as numpy's minimum.
#include "kiln/ops/common/elementwise.h"

namespace kiln {
namespace {
struct MinFn {
  template <typename T>
  T operator()(T a, T b) const { return (a < b || a != a) ? a : b; }
};
const OpRegistration kMin{"Min", make_kernel<Variadic<MinFn, AllNumericTypes>>};
}  // namespace
}  // namespace kiln
