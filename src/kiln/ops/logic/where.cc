// Where (opset 9+; 16 widened the types): condition ? X : Y elementwise, all three broadcast
// together numpy-style. Any element type, strings included; numbers move as raw bits, so one
// loop per element size serves every type.
#include "kiln/ops/common/elementwise.h"

#if defined(__AVX512BW__)
#include <immintrin.h>
#endif

namespace kiln {
namespace {

// One output row; C/X/Y say whether that input advances along the row or stays put.
template <typename T, bool C, bool X, bool Y>
void where_row(const bool* c, const T* x, const T* y, T* o, int64_t n) {
  int64_t i = 0;
#if defined(__AVX512BW__) && defined(__AVX512VL__)
  // 4-byte elements (float, int32) with a condition per element: 16 conditions become a mask
  // and one blend picks the lanes (GCC leaves the bool select scalar).
  if constexpr (sizeof(T) == 4 && C) {
    auto load = [](const T* p, int64_t k, bool along) {
      return along ? _mm512_loadu_si512(p + k) : _mm512_set1_epi32(int(*reinterpret_cast<const uint32_t*>(p)));
    };
    for (; i + 16 <= n; i += 16) {
      const __m128i bytes = _mm_loadu_si128(reinterpret_cast<const __m128i*>(c + i));
      const __mmask16 m = _mm_test_epi8_mask(bytes, bytes);  // true: any nonzero byte
      _mm512_storeu_si512(o + i, _mm512_mask_blend_epi32(m, load(y, i, Y), load(x, i, X)));
    }
  }
#endif
  for (; i < n; ++i) o[i] = c[C ? i : 0] ? x[X ? i : 0] : y[Y ? i : 0];
}

template <typename T>
using RowFn = void (*)(const bool*, const T*, const T*, T*, int64_t);

template <typename T>
RowFn<T> pick_row(bool c, bool x, bool y) {
  static constexpr RowFn<T> table[8] = {
      where_row<T, false, false, false>, where_row<T, false, false, true>, where_row<T, false, true, false>,
      where_row<T, false, true, true>,   where_row<T, true, false, false>, where_row<T, true, false, true>,
      where_row<T, true, true, false>,   where_row<T, true, true, true>};
  return table[(c ? 4 : 0) + (x ? 2 : 0) + (y ? 1 : 0)];
}

class Where : public Kernel {
 public:
  explicit Where(const ir::Node&) {}
  void prepare(OpContext& ctx) override {
    const Tensor& c = ctx.input(0);
    const Tensor& x = ctx.input(1);
    const Tensor& y = ctx.input(2);
    if (c.dtype() != DType::Bool)
      fail(ErrorCode::InvalidArgument, "condition must be bool, got ", dtype_name(c.dtype()));
    if (x.dtype() != y.dtype())
      fail(ErrorCode::InvalidArgument, "X and Y have different element types: ", dtype_name(x.dtype()), " and ",
           dtype_name(y.dtype()));
    ctx.set_output(0, x.dtype(), broadcast_shapes({c.shape(), x.shape(), y.shape()}));
  }
  void compute(OpContext& ctx) override {
    const Tensor& x = ctx.input(1);
    switch (x.dtype()) {
      case DType::String: return run<std::string>(ctx);
      default: break;
    }
    switch (dtype_size(x.dtype())) {
      case 1: return run<uint8_t>(ctx);
      case 2: return run<uint16_t>(ctx);
      case 4: return run<uint32_t>(ctx);
      case 8: return run<uint64_t>(ctx);
      default: fail(ErrorCode::NotImplemented, "Where: element type ", dtype_name(x.dtype()), " is not supported");
    }
  }

 private:
  // T is the element type, or an unsigned integer of its size for numbers.
  template <typename T>
  static void run(OpContext& ctx) {
    const Tensor& c = ctx.input(0);
    const Tensor& x = ctx.input(1);
    const Tensor& y = ctx.input(2);
    Tensor& out = ctx.output(0);
    const int64_t n = out.size();
    if (n == 0) return;
    const bool* pc = c.data<bool>();
    const T* px = static_cast<const T*>(x.raw());
    const T* py = static_cast<const T*>(y.raw());
    T* po = static_cast<T*>(out.raw());
    if (c.size() == n && x.size() == n && y.size() == n) {
      parallel_for(n, 32768, [&](int64_t s, int64_t e) {
        where_row<T, true, true, true>(pc + s, px + s, py + s, po + s, e - s);
      });
      return;
    }
    BroadcastWalk walk = make_broadcast_walk(out.shape(), {c.shape(), x.shape(), y.shape()});
    const int64_t inner = walk.inner();
    // Inner strides are 1 (the input runs along the row) or 0 (broadcast).
    const RowFn<T> row_fn =
        pick_row<T>(walk.strides[0].back() != 0, walk.strides[1].back() != 0, walk.strides[2].back() != 0);
    for_each_broadcast_row(walk, [&](int64_t row, const int64_t* off) {
      row_fn(pc + off[0], px + off[1], py + off[2], po + row * inner, inner);
    });
  }
};

const OpRegistration kWhere{"", "Where", 9, make_kernel<Where>};

}  // namespace
}  // namespace kiln
