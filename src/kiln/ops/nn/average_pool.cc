// AveragePool (opsets 1-19: count_include_pad from 7, ceil_mode from 10, dilations from 19):
// float on oneDNN, dilated windows and float64 through the reference loop of PoolKernel.
#include "kiln/ops/nn/pool_common.h"

namespace kiln::nn {
namespace {
std::unique_ptr<Kernel> make_average_pool(const KernelInit& init) {
  return std::make_unique<PoolKernel>(init.node, PoolKind::Average);
}
const OpRegistration kAveragePool{"AveragePool", make_average_pool};
}  // namespace
}  // namespace kiln::nn
