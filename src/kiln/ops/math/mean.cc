// Mean: elementwise mean of 1..N float inputs with numpy broadcasting (opset 8+): the sum,
// divided by N.
#include "kiln/ops/common/elementwise.h"

namespace kiln {
namespace {
struct MeanFn {
  template <typename T>
  T operator()(T a, T b) const { return a + b; }
  template <typename T>
  T finish(T sum, int64_t count) const { return sum / T(count); }
};
const OpRegistration kMean{"Mean", make_kernel<Variadic<MeanFn, AllFloatTypes>>};
}  // namespace
}  // namespace kiln
