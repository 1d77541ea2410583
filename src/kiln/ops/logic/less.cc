// Less: a < b elementwise with numpy broadcasting, giving bool (opset 7+; every numeric type from
// opset 9).
#include "kiln/ops/common/elementwise.h"

namespace kiln {
namespace {
struct LessFn {
  template <typename T>
  bool operator()(const T& a, const T& b) const { return a < b; }
};
const OpRegistration kLess{"", "Less", 7, make_kernel<Binary<LessFn, AllNumericTypes, true>>};
}  // namespace
}  // namespace kiln
