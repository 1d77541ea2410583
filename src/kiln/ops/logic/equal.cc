// Equal: a == b elementwise with numpy broadcasting, giving bool: numbers and bool (opset 7+;
// floats from 11) and strings (opset 19). NaN equals nothing.
#include "kiln/ops/common/elementwise.h"

namespace kiln {
namespace {
struct EqualFn {
  template <typename T>
  bool operator()(const T& a, const T& b) const { return a == b; }
};
using EqualTypes = TypeList<float, double, int32_t, int64_t, int8_t, int16_t, uint8_t, uint16_t, uint32_t, uint64_t,
                            Float16, BFloat16, bool, std::string>;
const OpRegistration kEqual{"", "Equal", 7, make_kernel<Binary<EqualFn, EqualTypes, true>>};
}  // namespace
}  // namespace kiln
