// Hardmax: along `axis` from opset 13, over the 2-D flattening at `axis` before (see softmax.h).
#include "kiln/ops/reduce/softmax.h"

namespace kiln {
namespace {
const OpRegistration kHardmax{"Hardmax", make_kernel<SoftmaxFamily<SoftmaxKind::Hardmax>>};
}  // namespace
}  // namespace kiln
