// RandomNormalLike (opset 1): RandomNormal with the input's shape; the type is `dtype`, or the
// input's when it is a float type.
#include "kiln/ops/random/random_common.h"

namespace kiln {
namespace {
const OpRegistration kRandomNormalLike{"", "RandomNormalLike", 1, make_kernel<random::RandomLike<random::Normal>>};
}  // namespace
}  // namespace kiln
