// Softsign: x / (1 + |x|), on float, double, float16 and bfloat16.
#include <cmath>

#include "kiln/ops/common/elementwise.h"

namespace kiln {
namespace {
struct SoftsignFn {
  template <typename T>
  T operator()(T x) const { return x / (T(1) + std::fabs(x)); }
};
const OpRegistration kSoftsign{"Softsign", make_kernel<Unary<SoftsignFn, AllFloatTypes>>};
}  // namespace
}  // namespace kiln
