// Helpers shared by the data-movement ops (Transpose, Slice, Gather, Pad, ...).
//
// Element movement does not care what the bits mean, so one code path serves every
// fixed-size type: elements move as unsigned integers of their width (uint8_t for bool and
// int8, uint16_t for float16, ...), and strings move as std::string by assignment.
//
//   dispatch_elements(x.dtype(), [&]<typename T>() { strided_copy(elems<T>(x), ...); });
#pragma once

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <cstring>
#include <string>
#include <type_traits>
#include <vector>

#if defined(__AVX512F__)
#include <immintrin.h>
#endif

#include "kiln/core/parallel.h"
#include "kiln/exec/kernel.h"

namespace kiln::tensor_ops {

// Calls fn.template operator()<T>() with T the carrier type of `t`'s elements.
template <typename Fn>
decltype(auto) dispatch_elements(DType t, Fn&& fn) {
  switch (t) {
    case DType::String: return fn.template operator()<std::string>();
    case DType::Int8: case DType::UInt8: case DType::Bool: return fn.template operator()<uint8_t>();
    case DType::Int16: case DType::UInt16: case DType::Float16: case DType::BFloat16:
      return fn.template operator()<uint16_t>();
    case DType::Int32: case DType::UInt32: case DType::Float32: return fn.template operator()<uint32_t>();
    case DType::Int64: case DType::UInt64: case DType::Float64: return fn.template operator()<uint64_t>();
    default: break;
  }
  fail(ErrorCode::NotImplemented, "element type ", dtype_name(t), " is not supported");
}

template <typename T>
const T* elems(const Tensor& t) {
  return static_cast<const T*>(t.raw());
}
template <typename T>
T* elems(Tensor& t) {
  return static_cast<T*>(t.raw());
}

template <typename T>
inline void copy_n(const T* src, int64_t n, T* dst) {
  if (n <= 0) return;
  if constexpr (std::is_trivially_copyable_v<T>) std::memcpy(dst, src, size_t(n) * sizeof(T));
  else std::copy(src, src + n, dst);
}

// A large contiguous copy, split across threads.
template <typename T>
void parallel_copy(const T* src, int64_t n, T* dst) {
  parallel_for(n, 1 << 16, [&](int64_t b, int64_t e) { copy_n(src + b, e - b, dst + b); });
}

// Axis in [-rank, rank) made non-negative; `what` names it in the error ("axis", "axes[1]").
inline int64_t normalize_axis(int64_t axis, int64_t rank, const char* what = "axis") {
  if (axis < -rank || axis >= rank)
    fail(ErrorCode::InvalidArgument, what, " ", axis, " is out of range for rank ", rank, ": expected [", -rank,
         ", ", rank - 1, "]");
  return axis < 0 ? axis + rank : axis;
}

// Every axis normalized against `rank`; repeated axes fail.
inline std::vector<int64_t> normalize_axes(const std::vector<int64_t>& axes, int64_t rank) {
  std::vector<int64_t> out;
  for (int64_t a : axes) {
    int64_t n = normalize_axis(a, rank, "axis");
    if (std::find(out.begin(), out.end(), n) != out.end())
      fail(ErrorCode::InvalidArgument, "axis ", a, " is repeated in axes");
    out.push_back(n);
  }
  return out;
}

// Shapes built from input values (Expand, Tile, Pad, ConstantOfShape...) must not overflow
// the element count: fails, naming `what`, beyond 2^50 elements.
inline void check_shape_size(const Shape& shape, const char* what) {
  constexpr int64_t kMax = int64_t(1) << 50;
  if (std::find(shape.begin(), shape.end(), int64_t(0)) != shape.end()) return;
  int64_t n = 1;
  for (int64_t d : shape) {
    if (d < 0 || d > kMax / n)
      fail(ErrorCode::InvalidArgument, what, " ", shape_str(shape), " is too large (more than 2^50 elements)");
    n *= d;
  }
}

[[noreturn]] inline void index_out_of_range(const char* what, int64_t index, int64_t bound) {
  fail(ErrorCode::InvalidArgument, what, " ", index, " is out of range: expected [", -bound, ", ", bound - 1,
       "] for a dimension of size ", bound);
}

// Negative indices count from the end (ONNX); anything outside [-bound, bound) fails.
inline int64_t wrap_index(int64_t i, int64_t bound, const char* what = "index") {
  if (i < -bound || i >= bound) index_out_of_range(what, i, bound);
  return i < 0 ? i + bound : i;
}

// Index checks inside parallel loops, where throwing is not allowed: the loop skips a bad
// index after recording it, and raise() throws for the first one afterwards.
class IndexGuard {
 public:
  bool wrap(int64_t& i, int64_t bound) {
    if (i < -bound || i >= bound) {
      bool expected = false;
      if (bad_.compare_exchange_strong(expected, true)) value_ = i, bound_ = bound;
      return false;
    }
    if (i < 0) i += bound;
    return true;
  }
  void raise(const char* what) const {
    if (bad_.load()) index_out_of_range(what, value_, bound_);
  }

 private:
  std::atomic<bool> bad_{false};
  int64_t value_ = 0, bound_ = 0;
};

// Reads an int32 or int64 index tensor as int64 (every other type fails, naming `what`).
inline std::vector<int64_t> read_indices(const Tensor& t, const char* what) {
  if (t.dtype() != DType::Int32 && t.dtype() != DType::Int64)
    fail(ErrorCode::InvalidArgument, what, " must be int32 or int64, got ", dtype_name(t.dtype()));
  return t.to_int64s();
}

// Calls fn.template operator()<I>() for the index type (int32_t or int64_t) of `t`.
template <typename Fn>
void dispatch_index(const Tensor& t, const char* what, Fn&& fn) {
  if (t.dtype() == DType::Int32) fn.template operator()<int32_t>();
  else if (t.dtype() == DType::Int64) fn.template operator()<int64_t>();
  else fail(ErrorCode::InvalidArgument, what, " must be int32 or int64, got ", dtype_name(t.dtype()));
}

inline std::vector<int64_t> contiguous_strides(const Shape& shape) {
  std::vector<int64_t> s(shape.size());
  int64_t acc = 1;
  for (size_t i = shape.size(); i-- > 0;) {
    s[i] = acc;
    acc *= shape[i];
  }
  return s;
}

// Drops size-1 dimensions and merges neighbours that walk memory as one dimension.
inline void simplify_walk(Shape& dims, std::vector<int64_t>& strides) {
  Shape d;
  std::vector<int64_t> s;
  for (size_t i = 0; i < dims.size(); ++i) {
    if (dims[i] == 1) continue;
    if (!d.empty() && s.back() == strides[i] * dims[i]) {
      d.back() *= dims[i];
      s.back() = strides[i];
    } else {
      d.push_back(dims[i]);
      s.push_back(strides[i]);
    }
  }
  dims = std::move(d);
  strides = std::move(s);
}

namespace detail {
// Rows [begin, end) of a strided copy whose last dim has `inner` elements at input stride
// `is`. kInner > 0 fixes a short contiguous row length at compile time, so each row is a few
// register moves instead of a memcpy call.
template <int64_t kInner, typename T>
void copy_rows(const T* src, const Shape& shape, const std::vector<int64_t>& strides, T* dst, int64_t begin,
               int64_t end) {
  const int64_t outer_rank = int64_t(shape.size()) - 1;
  const int64_t inner = kInner ? kInner : shape.back(), is = strides.back();
  std::vector<int64_t> coord(static_cast<size_t>(outer_rank));
  int64_t off = 0, rem = begin;
  for (int64_t d = outer_rank; d-- > 0;) {
    coord[size_t(d)] = rem % shape[size_t(d)];
    rem /= shape[size_t(d)];
    off += coord[size_t(d)] * strides[size_t(d)];
  }
  for (int64_t row = begin; row < end; ++row) {
    const T* s = src + off;
    T* o = dst + row * inner;
    if constexpr (kInner > 0) {
      for (int64_t i = 0; i < kInner; ++i) o[i] = s[i];
    } else if (is == 1) {
      copy_n(s, inner, o);
    } else if (is == 0) {
      std::fill_n(o, inner, s[0]);
    } else {
      for (int64_t i = 0; i < inner; ++i) o[i] = s[i * is];
    }
    for (int64_t d = outer_rank; d-- > 0;) {  // next row: advance the odometer
      off += strides[size_t(d)];
      if (++coord[size_t(d)] < shape[size_t(d)]) break;
      off -= strides[size_t(d)] * shape[size_t(d)];
      coord[size_t(d)] = 0;
    }
  }
}
}  // namespace detail

// dst (contiguous, of `shape`) takes src[sum coord[d] * strides[d]]. Strides may be 0
// (broadcast) or negative (reversed slices).
template <typename T>
void strided_copy(const T* src, Shape shape, std::vector<int64_t> strides, T* dst) {
  if (shape_size(shape) == 0) return;
  simplify_walk(shape, strides);
  if (shape.empty()) {
    dst[0] = src[0];
    return;
  }
  const int64_t inner = shape.back(), is = strides.back();
  const int64_t rows = shape_size(shape) / inner;
  if (rows == 1 && is == 1) return parallel_copy(src, inner, dst);
  parallel_for(rows, std::max<int64_t>(1, 32768 / inner), [&](int64_t begin, int64_t end) {
    if constexpr (std::is_trivially_copyable_v<T>) {
      if (is == 1 && inner <= 16) {
        switch (inner) {
          case 1: return detail::copy_rows<1>(src, shape, strides, dst, begin, end);
          case 2: return detail::copy_rows<2>(src, shape, strides, dst, begin, end);
          case 3: return detail::copy_rows<3>(src, shape, strides, dst, begin, end);
          case 4: return detail::copy_rows<4>(src, shape, strides, dst, begin, end);
          case 8: return detail::copy_rows<8>(src, shape, strides, dst, begin, end);
          case 16: return detail::copy_rows<16>(src, shape, strides, dst, begin, end);
          default: break;
        }
      }
    }
    detail::copy_rows<0>(src, shape, strides, dst, begin, end);
  });
}

namespace detail {
#if defined(__AVX512F__)
// dst[a * ld_dst + b] = src[a + b * ld_src] for a, b < 16 (4-byte elements): 16 rows in,
// transposed in registers by four rounds of pairing rows s apart (s = 8, 4, 2, 1), each round
// interleaving blocks of s elements, 16 rows out.
inline void transpose16x16(const float* src, int64_t ld_src, float* dst, int64_t ld_dst) {
  struct Index {
    __m512i lo[4], hi[4];
    Index() {
      for (int round = 0; round < 4; ++round) {
        const int sz = 8 >> round;
        alignas(64) int32_t l[16], h[16];
        for (int k = 0; k < 16; ++k) {
          const int g = k / (2 * sz), p = k % (2 * sz);
          l[k] = p < sz ? g * 2 * sz + p : 16 + g * 2 * sz + p - sz;
          h[k] = p < sz ? g * 2 * sz + sz + p : 16 + g * 2 * sz + p;
        }
        lo[round] = _mm512_load_si512(l);
        hi[round] = _mm512_load_si512(h);
      }
    }
  };
  static const Index idx;
  __m512 r[16];
  for (int b = 0; b < 16; ++b) r[b] = _mm512_loadu_ps(src + b * ld_src);
  for (int round = 0; round < 4; ++round) {
    const int sz = 8 >> round;
    for (int i = 0; i < 16; ++i) {
      if (i & sz) continue;
      const __m512 lo = _mm512_permutex2var_ps(r[i], idx.lo[round], r[i + sz]);
      r[i + sz] = _mm512_permutex2var_ps(r[i], idx.hi[round], r[i + sz]);
      r[i] = lo;
    }
  }
  for (int a = 0; a < 16; ++a) _mm512_storeu_ps(dst + a * ld_dst, r[a]);
}
#endif
}  // namespace detail

// The shape Transpose(t, perm) has; `perm` must reorder t's axes (empty: no transpose).
inline Shape permuted(const Shape& shape, const std::vector<int64_t>& perm, const char* what) {
  if (perm.empty()) return shape;
  std::vector<bool> seen(shape.size());
  bool ok = perm.size() == shape.size();
  for (int64_t p : perm) {
    ok = ok && p >= 0 && p < int64_t(shape.size()) && !seen[size_t(p)];
    if (ok) seen[size_t(p)] = true;
  }
  if (!ok) fail(ErrorCode::InvalidArgument, what, " ", shape_str(perm), " does not reorder the axes of ", shape_str(shape));
  Shape out;
  for (int64_t p : perm) out.push_back(shape[size_t(p)]);
  return out;
}

// Strides (elements) of the dense tensor `stored` read through `perm`, padded to `rank`.
inline std::vector<int64_t> view_strides(const Shape& stored, const std::vector<int64_t>& perm, size_t rank) {
  const std::vector<int64_t> dense = contiguous_strides(stored);
  std::vector<int64_t> out(rank - stored.size(), shape_size(stored));
  for (size_t i = 0; i < stored.size(); ++i) out.push_back(perm.empty() ? dense[i] : dense[size_t(perm[i])]);
  return out;
}

// dst = src transposed: dst.dim(i) == src.dim(perm[i]). When the innermost output dimension
// is not the innermost input one, the two are walked in square tiles so both the reads and
// the writes stay within a few cache lines.
template <typename T>
void permute(const T* src, const Shape& in_shape, const std::vector<int64_t>& perm, T* dst) {
  const std::vector<int64_t> in_strides = contiguous_strides(in_shape);
  Shape dims;
  std::vector<int64_t> strides;
  for (int64_t p : perm) {
    dims.push_back(in_shape[size_t(p)]);
    strides.push_back(in_strides[size_t(p)]);
  }
  if (shape_size(dims) == 0) return;
  simplify_walk(dims, strides);
  if (dims.empty() || strides.back() == 1) return strided_copy(src, dims, strides, dst);

  // Tile over output dim j (the one innermost in the input) and the last output dim.
  const size_t r = dims.size();
  const size_t j = size_t(std::min_element(strides.begin(), strides.end()) - strides.begin());
  const std::vector<int64_t> out_strides = contiguous_strides(dims);
  const int64_t na = dims[j], sa = strides[j], da = out_strides[j];
  const int64_t nb = dims[r - 1], sb = strides[r - 1];
  std::vector<size_t> rest;  // the other output dims, walked outermost first
  for (size_t d = 0; d + 1 < r; ++d)
    if (d != j) rest.push_back(d);
  int64_t outer = 1;
  for (size_t d : rest) outer *= dims[d];

  constexpr int64_t kTile = sizeof(T) >= 8 ? 16 : 32;
  const int64_t a_tiles = (na + kTile - 1) / kTile;
  const int64_t items = outer * a_tiles;
  parallel_for(items, std::max<int64_t>(1, 32768 / (kTile * nb)), [&](int64_t begin, int64_t end) {
    for (int64_t item = begin; item < end; ++item) {
      int64_t o = item / a_tiles, a0 = (item % a_tiles) * kTile;
      int64_t soff = 0, doff = 0;
      for (size_t k = rest.size(); k-- > 0;) {
        const size_t d = rest[k];
        const int64_t c = o % dims[d];
        o /= dims[d];
        soff += c * strides[d];
        doff += c * out_strides[d];
      }
      const int64_t a1 = std::min(na, a0 + kTile);
      for (int64_t b0 = 0; b0 < nb; b0 += kTile) {
        const int64_t b1 = std::min(nb, b0 + kTile);
#if defined(__AVX512F__)
        if constexpr (sizeof(T) == 4 && std::is_trivially_copyable_v<T>) {
          if (sa == 1 && a1 - a0 == kTile && b1 - b0 == kTile) {  // whole tiles of contiguous reads
            for (int64_t a = a0; a < a1; a += 16)
              for (int64_t b = b0; b < b1; b += 16)
                detail::transpose16x16(reinterpret_cast<const float*>(src + soff + a + b * sb), sb,
                                       reinterpret_cast<float*>(dst + doff + a * da + b), da);
            continue;
          }
        }
#endif
        for (int64_t a = a0; a < a1; ++a) {
          const T* s = src + soff + a * sa;
          T* t = dst + doff + a * da;
          for (int64_t b = b0; b < b1; ++b) t[b] = s[b * sb];
        }
      }
    }
  });
}

}  // namespace kiln::tensor_ops
