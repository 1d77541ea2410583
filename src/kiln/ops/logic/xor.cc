// Xor (opset 7+): logical exclusive or of two bool tensors with numpy broadcasting.
#include "kiln/ops/common/elementwise.h"

namespace kiln {
namespace {
struct XorFn {
  bool operator()(bool a, bool b) const { return a != b; }
};
const OpRegistration kXor{"", "Xor", 7, make_kernel<Binary<XorFn, TypeList<bool>, true>>};
}  // namespace
}  // namespace kiln
