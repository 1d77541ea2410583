// RandomNormal (opset 1): a tensor of the `shape` attribute drawn from N(mean, scale^2), of
// type `dtype` (float by default: float, double, float16, bfloat16).
#include "kiln/ops/random/random_common.h"

namespace kiln {
namespace {
const OpRegistration kRandomNormal{"", "RandomNormal", 1, make_kernel<random::RandomOfShape<random::Normal>>};
}  // namespace
}  // namespace kiln
