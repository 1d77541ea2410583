// Add: numpy-broadcast sum (opset 7+; older opsets' axis/broadcast attributes are not here).
#include "kiln/ops/common/elementwise.h"

namespace kiln {
namespace {
struct AddFn {
  template <typename T>
  T operator()(T a, T b) const { return T(a + b); }
};
const OpRegistration kAdd{"Add", make_kernel<Binary<AddFn, NumericTypes>>};
}  // namespace
}  // namespace kiln
