// Or (opset 7+): logical or of two bool tensors with numpy broadcasting.
#include "kiln/ops/common/elementwise.h"

namespace kiln {
namespace {
struct OrFn {
  bool operator()(bool a, bool b) const { return a || b; }
};
const OpRegistration kOr{"", "Or", 7, make_kernel<Binary<OrFn, TypeList<bool>, true>>};
}  // namespace
}  // namespace kiln
