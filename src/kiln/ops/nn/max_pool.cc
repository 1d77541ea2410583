// MaxPool (opsets 1-12): float on oneDNN; the Indices output (row- or column-major per
// storage_order), float64, int8 and uint8 through the reference loop of PoolKernel.
#include "kiln/ops/nn/pool_common.h"

namespace kiln::nn {
namespace {
std::unique_ptr<Kernel> make_max_pool(const KernelInit& init) {
  return std::make_unique<PoolKernel>(init.node, PoolKind::Max);
}
const OpRegistration kMaxPool{"MaxPool", make_max_pool};
}  // namespace
}  // namespace kiln::nn
