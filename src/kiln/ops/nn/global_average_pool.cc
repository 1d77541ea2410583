// GlobalAveragePool: the mean of each (n, c) plane (PlaneMean, in global_pool.h, which fused
// convolutions that output their own pool share).
#include "kiln/ops/nn/global_pool.h"

namespace kiln::nn {
namespace {
const OpRegistration kGlobalAveragePool{"GlobalAveragePool", make_kernel<GlobalPool<PlaneMean>>};
}  // namespace
}  // namespace kiln::nn
