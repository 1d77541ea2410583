// Relu: max(x, 0).
#include "kiln/ops/common/elementwise.h"

namespace kiln {
namespace {
struct ReluFn {
  template <typename T>
  T operator()(T x) const { return x > T(0) ? x : T(0); }
};
const OpRegistration kRelu{"Relu", make_kernel<Unary<ReluFn, TypeList<float, double, int8_t, int16_t, int32_t, int64_t>>>};
}  // namespace
}  // namespace kiln
