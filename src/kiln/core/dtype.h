// Element types, numbered as ONNX's TensorProto.DataType so they cross the protobuf and Python
// boundaries unchanged.
#pragma once

#include <cstdint>
#include <cstring>
#include <string>
#include <type_traits>

#include "kiln/core/error.h"

namespace kiln {

enum class DType : int32_t {
  Undefined = 0,
  Float32 = 1,
  UInt8 = 2,
  Int8 = 3,
  UInt16 = 4,
  Int16 = 5,
  Int32 = 6,
  Int64 = 7,
  String = 8,
  Bool = 9,
  Float16 = 10,
  Float64 = 11,
  UInt32 = 12,
  UInt64 = 13,
  BFloat16 = 16,
};

// 16-bit floats are stored as their bit patterns; kernels convert through float.
struct Float16 {
  uint16_t bits;
};
struct BFloat16 {
  uint16_t bits;
};

float half_to_float(uint16_t h);
uint16_t float_to_half(float f);
inline float bfloat16_to_float(uint16_t b) {
  uint32_t u = uint32_t(b) << 16;
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}
inline uint16_t float_to_bfloat16(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  if ((u & 0x7fffffff) > 0x7f800000) return uint16_t((u >> 16) | 0x40);  // keep NaN a NaN
  u += 0x7fff + ((u >> 16) & 1);                                        // round to nearest even
  return uint16_t(u >> 16);
}

size_t dtype_size(DType t);
// ONNX's spelling, as in "tensor(float)".
const char* dtype_name(DType t);
bool dtype_valid(int32_t code);

template <typename T>
constexpr DType dtype_of() {
  if constexpr (std::is_same_v<T, float>) return DType::Float32;
  else if constexpr (std::is_same_v<T, double>) return DType::Float64;
  else if constexpr (std::is_same_v<T, int8_t>) return DType::Int8;
  else if constexpr (std::is_same_v<T, int16_t>) return DType::Int16;
  else if constexpr (std::is_same_v<T, int32_t>) return DType::Int32;
  else if constexpr (std::is_same_v<T, int64_t>) return DType::Int64;
  else if constexpr (std::is_same_v<T, uint8_t>) return DType::UInt8;
  else if constexpr (std::is_same_v<T, uint16_t>) return DType::UInt16;
  else if constexpr (std::is_same_v<T, uint32_t>) return DType::UInt32;
  else if constexpr (std::is_same_v<T, uint64_t>) return DType::UInt64;
  else if constexpr (std::is_same_v<T, bool>) return DType::Bool;
  else if constexpr (std::is_same_v<T, std::string>) return DType::String;
  else if constexpr (std::is_same_v<T, Float16>) return DType::Float16;
  else if constexpr (std::is_same_v<T, BFloat16>) return DType::BFloat16;
  else static_assert(sizeof(T) == 0, "no ONNX element type for this C++ type");
}

template <typename... Ts>
struct TypeList {};

using FloatTypes = TypeList<float, double>;
using IntTypes = TypeList<int32_t, int64_t, int8_t, int16_t, uint8_t, uint16_t, uint32_t, uint64_t>;
using NumericTypes =
    TypeList<float, double, int32_t, int64_t, int8_t, int16_t, uint8_t, uint16_t, uint32_t, uint64_t>;
using AllTypes = TypeList<float, double, int32_t, int64_t, int8_t, int16_t, uint8_t, uint16_t,
                          uint32_t, uint64_t, bool, std::string, Float16, BFloat16>;

// Calls fn.template operator()<T>() for the C++ type T of `t`, if T is in the list; otherwise
// throws NotImplemented naming `what` and the type.
template <typename... Ts, typename Fn>
decltype(auto) dispatch(TypeList<Ts...>, DType t, const char* what, Fn&& fn) {
  using R = decltype(fn.template operator()<std::tuple_element_t<0, std::tuple<Ts...>>>());
  if constexpr (std::is_void_v<R>) {
    bool done = ((dtype_of<Ts>() == t ? (fn.template operator()<Ts>(), true) : false) || ...);
    if (!done) fail(ErrorCode::NotImplemented, what, ": element type ", dtype_name(t), " is not supported");
  } else {
    R result{};
    bool done = ((dtype_of<Ts>() == t ? (result = fn.template operator()<Ts>(), true) : false) || ...);
    if (!done) fail(ErrorCode::NotImplemented, what, ": element type ", dtype_name(t), " is not supported");
    return result;
  }
}

}  // namespace kiln
