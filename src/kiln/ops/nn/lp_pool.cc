// LpPool (opsets 1-18; p is a float in opset 1, an int after): (sum |x|^p)^(1/p) over each
// window, float and double, through PoolKernel's reference loop.
#include "kiln/ops/nn/pool_common.h"

namespace kiln::nn {
namespace {
std::unique_ptr<Kernel> make_lp_pool(const KernelInit& init) { return std::make_unique<PoolKernel>(init.node, PoolKind::Lp); }
const OpRegistration kLpPool{"LpPool", make_lp_pool};
}  // namespace
}  // namespace kiln::nn
