// And (opset 7+): logical and of two bool tensors with numpy broadcasting.
#include "kiln/ops/common/elementwise.h"

namespace kiln {
namespace {
struct AndFn {
  bool operator()(bool a, bool b) const { return a && b; }
};
const OpRegistration kAnd{"", "And", 7, make_kernel<Binary<AndFn, TypeList<bool>, true>>};
}  // namespace
}  // namespace kiln
