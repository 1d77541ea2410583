// ArgMin (opsets 1-13; select_last_index from 12): index of the smallest value along axis.
#include "kiln/ops/reduce/arg_reduce.h"

namespace kiln {
namespace {
const OpRegistration kArgMin{"ArgMin", make_kernel<ArgReduce<false>>};
}  // namespace
}  // namespace kiln
