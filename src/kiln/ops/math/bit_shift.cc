// BitShift (opset 11): unsigned integers shifted LEFT or RIGHT by the second input, with numpy
// broadcasting. Shifting by the type's width or more gives 0 (C leaves it undefined).
#include "kiln/ops/common/elementwise.h"

namespace kiln {
namespace {
struct BitShiftFn {
  explicit BitShiftFn(const ir::Node& node) {
    const std::string d = node.attr_string("direction", "");
    if (d != "LEFT" && d != "RIGHT") fail(ErrorCode::InvalidGraph, "direction must be LEFT or RIGHT, got '", d, "'");
    left = d == "LEFT";
  }
  template <typename T>
  T operator()(T x, T s) const {
    if (s >= T(sizeof(T) * 8)) return T(0);
    return left ? T(wrap_uint_t<T>(x) << s) : T(x >> s);
  }
  bool left;
};
const OpRegistration kBitShift{"", "BitShift", 11,
                               make_kernel<Binary<BitShiftFn, TypeList<uint8_t, uint16_t, uint32_t, uint64_t>>>};
}  // namespace
}  // namespace kiln
