// GreaterOrEqual: a >= b elementwise with numpy broadcasting, giving bool (opset 12+).
#include "kiln/ops/common/elementwise.h"

namespace kiln {
namespace {
struct GreaterOrEqualFn {
  template <typename T>
  bool operator()(const T& a, const T& b) const { return a >= b; }
};
const OpRegistration kGreaterOrEqual{"", "GreaterOrEqual", 12,
                                     make_kernel<Binary<GreaterOrEqualFn, AllNumericTypes, true>>};
}  // namespace
}  // namespace kiln
