// Mod (opset 10+): with fmod=0 (the default) the remainder takes the divisor's sign, as
// Python's %, and only integers are allowed; with fmod=1 it takes the dividend's sign, as C's
// fmod and %. A zero integer divisor fails the run.
#include <cmath>

#include "kiln/ops/math/integer_division.h"

namespace kiln {
namespace {
struct ModFn {
  explicit ModFn(const ir::Node& node) : fmod(node.attr_int("fmod", 0) != 0) {
    if (node.attr_int("fmod", 0) != 0 && node.attr_int("fmod", 0) != 1)
      fail(ErrorCode::InvalidGraph, "fmod must be 0 or 1, got ", node.attr_int("fmod", 0));
  }
  template <typename T>
  T operator()(T a, T b) const {
    if constexpr (std::is_floating_point_v<T>) {
      return std::fmod(a, b);
    } else {
      const T d = safe_divisor(b);  // x % -1 is 0 either way
      T r = T(a % d);
      if constexpr (std::is_signed_v<T>)
        if (!fmod && r != 0 && ((r < 0) != (d < 0))) r = T(r + d);
      return r;
    }
  }
  template <typename T>
  void check(const Tensor&, const Tensor& b) const {
    if constexpr (!std::is_integral_v<T>) {
      if (!fmod)
        fail(ErrorCode::InvalidArgument, "fmod=0 needs integer inputs, got ", dtype_name(b.dtype()),
             ": set fmod=1 for floating-point Mod");
    }
    check_integer_divisor<T>(b);
  }
  bool fmod;
};
const OpRegistration kMod{"", "Mod", 10, make_kernel<Binary<ModFn, AllNumericTypes>>};
}  // namespace
}  // namespace kiln
