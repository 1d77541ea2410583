// ArgMax (opsets 1-13; select_last_index from 12): index of the largest value along axis.
#include "kiln/ops/reduce/arg_reduce.h"

namespace kiln {
namespace {
const OpRegistration kArgMax{"ArgMax", make_kernel<ArgReduce<true>>};
}  // namespace
}  // namespace kiln
