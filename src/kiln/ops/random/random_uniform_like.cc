// RandomUniformLike (opset 1): RandomUniform with the input's shape; the type is `dtype`, or
// the input's when it is a float type.
#include "kiln/ops/random/random_common.h"

namespace kiln {
namespace {
const OpRegistration kRandomUniformLike{"", "RandomUniformLike", 1, make_kernel<random::RandomLike<random::Uniform>>};
}  // namespace
}  // namespace kiln
