// RandomUniform (opset 1): a tensor of the `shape` attribute drawn uniformly from [low, high),
// of type `dtype` (float by default: float, double, float16, bfloat16).
#include "kiln/ops/random/random_common.h"

namespace kiln {
namespace {
const OpRegistration kRandomUniform{"", "RandomUniform", 1, make_kernel<random::RandomOfShape<random::Uniform>>};
}  // namespace
}  // namespace kiln
