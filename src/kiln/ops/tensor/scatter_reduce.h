// The reduction attribute shared by ScatterND and ScatterElements: how an update combines
// with the element it lands on (none replaces; add and mul from opset 16; max and min from 18).
#pragma once

#include <algorithm>
#include <string>

#include "kiln/ops/tensor/tensor_copy.h"

namespace kiln::tensor_ops {

enum class Reduction { None, Add, Mul, Max, Min };

inline Reduction parse_reduction(const ir::Node& node) {
  const std::string r = node.attr_string("reduction", "none");
  if (r == "none") return Reduction::None;
  if (r == "add") return Reduction::Add;
  if (r == "mul") return Reduction::Mul;
  if (r == "max") return Reduction::Max;
  if (r == "min") return Reduction::Min;
  fail(ErrorCode::InvalidGraph, "reduction must be none, add, mul, max or min, got '", r, "'");
}

// 16-bit floats combine through float.
template <typename T>
float to_float_bits(T v) {
  if constexpr (std::is_same_v<T, Float16>) return half_to_float(v.bits);
  else return bfloat16_to_float(v.bits);
}
template <typename T>
T from_float_bits(float f) {
  if constexpr (std::is_same_v<T, Float16>) return T{float_to_half(f)};
  else return T{float_to_bfloat16(f)};
}

template <typename T>
inline void combine(Reduction r, T& dst, const T& src) {
  if constexpr (std::is_same_v<T, Float16> || std::is_same_v<T, BFloat16>) {
    float d = to_float_bits(dst);
    combine(r, d, to_float_bits(src));
    dst = from_float_bits<T>(d);
  } else {
    switch (r) {
      case Reduction::None: dst = src; break;
      case Reduction::Add: dst = T(dst + src); break;
      case Reduction::Mul: dst = T(dst * src); break;
      case Reduction::Max: dst = std::max(dst, src); break;
      case Reduction::Min: dst = std::min(dst, src); break;
    }
  }
}

using ReducibleTypes = TypeList<float, double, int32_t, int64_t, int8_t, int16_t, uint8_t, uint16_t, uint32_t,
                                uint64_t, Float16, BFloat16>;

// Calls fn.template operator()<T, true>() with a carrier type when updates replace (every
// element type), or fn.template operator()<T, false>() with the real element type when they
// combine arithmetically.
template <typename Fn>
void dispatch_scatter(Reduction r, DType t, Fn&& fn) {
  if (r == Reduction::None) dispatch_elements(t, [&]<typename T>() { fn.template operator()<T, true>(); });
  else dispatch(ReducibleTypes{}, t, "reduction", [&]<typename T>() { fn.template operator()<T, false>(); });
}

}  // namespace kiln::tensor_ops
