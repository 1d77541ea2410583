// Building blocks for elementwise ops. An op file supplies a functor and a type list:
//
//   struct AddFn { template <typename T> T operator()(T a, T b) const { return a + b; } };
//   const OpRegistration kAdd{"Add", make_kernel<Binary<AddFn, NumericTypes>>};
//
// Functors may take the node in their constructor to read attributes (LeakyRelu's alpha).
// 16-bit floats (Float16, BFloat16) reach functors as float: the loops widen each element and
// narrow the result, so a functor written for float serves them too.
// Optional functor members the kernels use when present:
//   void apply(const float* x, float* y, int64_t n) const     Unary: a vectorized float path
//   template <typename T> void check(const Tensor& a, const Tensor& b) const
//                                                            Binary: validates inputs before the
//                                                            loop (integer division by zero)
//   template <typename T> T finish(T acc, int64_t count) const
//                                                            Variadic: after folding (Mean)
#pragma once

#include <algorithm>
#include <type_traits>

#if defined(__F16C__)
#include <immintrin.h>
#endif

#include "kiln/exec/kernel.h"
#include "kiln/ops/common/broadcast.h"

namespace kiln {

using AllFloatTypes = TypeList<float, double, Float16, BFloat16>;
using AllNumericTypes = TypeList<float, double, int32_t, int64_t, int8_t, int16_t, uint8_t, uint16_t, uint32_t,
                                 uint64_t, Float16, BFloat16>;
using SignedNumericTypes = TypeList<float, double, int32_t, int64_t, int8_t, int16_t, Float16, BFloat16>;

template <typename T>
inline constexpr bool is_half_v = std::is_same_v<T, Float16> || std::is_same_v<T, BFloat16>;

// The type a functor sees for element type T: float for the 16-bit floats, T otherwise.
// An unsigned type in which T's integer arithmetic wraps without undefined behaviour (types
// narrower than int would promote to signed int, so they widen to uint32_t).
template <typename T>
using wrap_uint_t = std::conditional_t<(sizeof(T) < 4), uint32_t, std::make_unsigned_t<T>>;

template <typename T>
using compute_t = std::conditional_t<is_half_v<T>, float, T>;

template <typename T>
inline const T& to_compute(const T& v) { return v; }
inline float to_compute(Float16 v) {
#if defined(__F16C__)
  return _cvtsh_ss(v.bits);
#else
  return half_to_float(v.bits);
#endif
}
inline float to_compute(BFloat16 v) { return bfloat16_to_float(v.bits); }

template <typename R, typename C>
inline R from_compute(const C& v) {
  if constexpr (std::is_same_v<R, Float16>) {
#if defined(__F16C__)
    return Float16{uint16_t(_cvtss_sh(float(v), _MM_FROUND_TO_NEAREST_INT))};
#else
    return Float16{float_to_half(float(v))};
#endif
  } else if constexpr (std::is_same_v<R, BFloat16>) {
    return BFloat16{float_to_bfloat16(float(v))};
  } else {
    return R(v);
  }
}

template <typename Fn>
Fn make_functor(const ir::Node& node) {
  if constexpr (std::is_constructible_v<Fn, const ir::Node&>) return Fn(node);
  else return Fn();
}

// out[i] = fn(a[i], b[i]) with broadcasting; R is the output element type. The inputs may
// differ in type (Pow: TB is the exponent's); `a` may be `out` itself (folds in place).
template <typename T, typename R, typename TB = T, typename Fn>
void binary_loop(const Tensor& a, const Tensor& b, Tensor& out, const Fn& fn) {
  const T* pa = a.data<T>();
  const TB* pb = b.data<TB>();
  R* po = out.data<R>();
  const int64_t n = out.size();
  if (n == 0) return;
  constexpr int64_t kGrain = 32768;
  auto f = [&fn](const T& x, const TB& y) { return from_compute<R>(fn(to_compute(x), to_compute(y))); };
  if (a.size() == n && b.size() == n) {
    parallel_for(n, kGrain, [&](int64_t s, int64_t e) {
#pragma omp simd
      for (int64_t i = s; i < e; ++i) po[i] = f(pa[i], pb[i]);
    });
  } else if (b.size() == 1 && a.size() == n) {
    const TB vb = pb[0];
    parallel_for(n, kGrain, [&](int64_t s, int64_t e) {
#pragma omp simd
      for (int64_t i = s; i < e; ++i) po[i] = f(pa[i], vb);
    });
  } else if (a.size() == 1 && b.size() == n) {
    const T va = pa[0];
    parallel_for(n, kGrain, [&](int64_t s, int64_t e) {
#pragma omp simd
      for (int64_t i = s; i < e; ++i) po[i] = f(va, pb[i]);
    });
  } else {
    BroadcastWalk walk = make_broadcast_walk(out.shape(), {a.shape(), b.shape()});
    const int64_t inner = walk.inner();
    const int64_t sa = walk.strides[0].back(), sb = walk.strides[1].back();
    // Rows against one repeated row, per block of rows (a per-channel operand of channels-last
    // data, per image or shared): one flat loop. The walk's bookkeeping per row cost more than
    // rows of 32-144 channels (SE scales: 15-30 GB/s, half of a plain Mul's).
    if (const size_t d = walk.dims.size(); (d == 2 || d == 3) && sa == 1 && sb == 1) {
      const int64_t reps = walk.dims[d - 2], blocks = d == 3 ? walk.dims[0] : 1;
      const int64_t ra = walk.strides[0][d - 2], rb = walk.strides[1][d - 2];
      const int64_t ba = d == 3 ? walk.strides[0][0] : 0, bb = d == 3 ? walk.strides[1][0] : 0;
      if ((ra == inner && rb == 0) || (ra == 0 && rb == inner)) {
        parallel_for(blocks * reps, std::max<int64_t>(1, 16384 / std::max<int64_t>(inner, 1)), [&](int64_t s, int64_t e) {
          int64_t blk = s / reps, i = s % reps;
          for (int64_t r = s; r < e; ++r) {
            const T* xa = pa + blk * ba + i * ra;
            const TB* xb = pb + blk * bb + i * rb;
            R* xo = po + r * inner;
#pragma omp simd
            for (int64_t c = 0; c < inner; ++c) xo[c] = f(xa[c], xb[c]);
            if (++i == reps) i = 0, ++blk;
          }
        });
        return;
      }
    }
    for_each_broadcast_row(walk, [&](int64_t row, const int64_t* off) {
      const T* ra = pa + off[0];
      const TB* rb = pb + off[1];
      R* ro = po + row * inner;
      if (sa == 1 && sb == 1) {
#pragma omp simd
        for (int64_t i = 0; i < inner; ++i) ro[i] = f(ra[i], rb[i]);
      } else if (sa == 1 && sb == 0) {
        const TB vb = rb[0];
#pragma omp simd
        for (int64_t i = 0; i < inner; ++i) ro[i] = f(ra[i], vb);
      } else if (sa == 0 && sb == 1) {
        const T va = ra[0];
#pragma omp simd
        for (int64_t i = 0; i < inner; ++i) ro[i] = f(va, rb[i]);
      } else {
        for (int64_t i = 0; i < inner; ++i) ro[i] = f(ra[i * sa], rb[i * sb]);
      }
    });
  }
}

// A broadcasting binary op over the types in `Types`. With BoolOut the result is bool
// (comparisons); otherwise it has the inputs' type.
template <typename Fn, typename Types, bool BoolOut = false>
class Binary : public Kernel {
 public:
  explicit Binary(const ir::Node& node)
      : fn_(make_functor<Fn>(node)), nhwc_(node.attr_int("kiln_nhwc", 0) != 0) {}
  void prepare(OpContext& ctx) override {
    const Tensor& a = ctx.input(0);
    const Tensor& b = ctx.input(1);
    if (a.dtype() != b.dtype())
      fail(ErrorCode::InvalidArgument, "inputs have different element types: ", dtype_name(a.dtype()), " and ",
           dtype_name(b.dtype()));
    dispatch(Types{}, a.dtype(), ctx.node().op_type.c_str(), []<typename T>() {});
    const Shape out = broadcast_shapes({a.shape(), b.shape()});
    ctx.set_output(0, BoolOut ? DType::Bool : a.dtype(), out);
    if (nhwc_) {
      if (out.size() != 4) fail(ErrorCode::InvalidGraph, "kiln_nhwc needs a 4-D output, got ", shape_str(out));
      stored_ = {nhwc_storage_shape(a.shape(), 0), nhwc_storage_shape(b.shape(), 1), nhwc_storage_shape(out, -1)};
    }
  }
  void compute(OpContext& ctx) override {
    const Tensor& a = ctx.input(0);
    const Tensor& b = ctx.input(1);
    Tensor& out = ctx.output(0);
    if (nhwc_) {
      auto view = [](const Tensor& t, const Shape& s) { return Tensor::view(t.dtype(), s, const_cast<void*>(t.raw())); };
      Tensor sa = view(a, stored_[0]), sb = view(b, stored_[1]), so = view(out, stored_[2]);
      return run(sa, sb, so, ctx.node().op_type.c_str());
    }
    run(a, b, out, ctx.node().op_type.c_str());
  }
  int inplace_input() const override { return BoolOut ? -1 : 0; }

 private:
  void run(const Tensor& a, const Tensor& b, Tensor& out, const char* what) {
    dispatch(Types{}, a.dtype(), what, [&]<typename T>() {
      if constexpr (requires { fn_.template check<T>(a, b); }) fn_.template check<T>(a, b);
      if constexpr (BoolOut) binary_loop<T, bool>(a, b, out, fn_);
      else binary_loop<T, T>(a, b, out, fn_);
    });
  }

  Fn fn_;
  bool nhwc_;
  std::vector<Shape> stored_;
};

// out[i] = fn(x[i]) over the types in `Types`; the output has type Out, or the input's type
// when Out is void.
template <typename Fn, typename Types, typename Out = void>
class Unary : public Kernel {
 public:
  explicit Unary(const ir::Node& node) : fn_(make_functor<Fn>(node)) {}
  int inplace_input() const override { return std::is_void_v<Out> ? 0 : -1; }
  void prepare(OpContext& ctx) override {
    const Tensor& x = ctx.input(0);
    dispatch(Types{}, x.dtype(), ctx.node().op_type.c_str(), []<typename T>() {});
    ctx.set_output(0, std::is_void_v<Out> ? x.dtype() : dtype_of<std::conditional_t<std::is_void_v<Out>, float, Out>>(),
                   x.shape());
  }
  void compute(OpContext& ctx) override {
    const Tensor& x = ctx.input(0);
    Tensor& out = ctx.output(0);
    dispatch(Types{}, x.dtype(), ctx.node().op_type.c_str(), [&]<typename T>() {
      using R = std::conditional_t<std::is_void_v<Out>, T, Out>;
      const T* px = x.data<T>();
      R* po = out.data<R>();
      constexpr bool kBlock = requires(const float* p, float* q) { fn_.apply(p, q, int64_t(0)); };
      if constexpr (kBlock && std::is_same_v<T, float> && std::is_same_v<R, float>) {
        parallel_for(x.size(), 16384, [&](int64_t s, int64_t e) { fn_.apply(px + s, po + s, e - s); });
      } else if constexpr (kBlock && is_half_v<T> && std::is_same_v<R, T>) {
        // Widen a block to float, run the vector path, narrow back.
        parallel_for(x.size(), 16384, [&](int64_t s, int64_t e) {
          constexpr int64_t kBlockSize = 512;
          alignas(64) float buf[kBlockSize];
          for (int64_t b = s; b < e; b += kBlockSize) {
            const int64_t m = std::min(kBlockSize, e - b);
            for (int64_t i = 0; i < m; ++i) buf[i] = to_compute(px[b + i]);
            fn_.apply(buf, buf, m);
            for (int64_t i = 0; i < m; ++i) po[b + i] = from_compute<T>(buf[i]);
          }
        });
      } else {
        parallel_for(x.size(), 16384, [&](int64_t s, int64_t e) {
#pragma omp simd
          for (int64_t i = s; i < e; ++i) po[i] = from_compute<R>(fn_(to_compute(px[i])));
        });
      }
    });
  }

 private:
  Fn fn_;
};

// A broadcasting fold over 1..N inputs of one type (Sum, Min, Max, Mean).
template <typename Fn, typename Types>
class Variadic : public Kernel {
 public:
  explicit Variadic(const ir::Node& node) : fn_(make_functor<Fn>(node)) {}
  void prepare(OpContext& ctx) override {
    const int n = ctx.num_inputs();
    if (n == 0) fail(ErrorCode::InvalidGraph, "expected at least one input, got none");
    std::vector<Shape> shapes;
    for (int i = 0; i < n; ++i) {
      if (!ctx.has_input(i)) fail(ErrorCode::InvalidGraph, "input ", i, " is missing");
      const Tensor& t = ctx.input(i);
      if (t.dtype() != ctx.input(0).dtype())
        fail(ErrorCode::InvalidArgument, "input ", i, " is ", dtype_name(t.dtype()), " but input 0 is ",
             dtype_name(ctx.input(0).dtype()));
      shapes.push_back(t.shape());
    }
    dispatch(Types{}, ctx.input(0).dtype(), ctx.node().op_type.c_str(), []<typename T>() {});
    ctx.set_output(0, ctx.input(0).dtype(), broadcast_shapes(shapes));
  }
  void compute(OpContext& ctx) override {
    const int n = ctx.num_inputs();
    Tensor& out = ctx.output(0);
    dispatch(Types{}, out.dtype(), ctx.node().op_type.c_str(), [&]<typename T>() {
      if (n == 1) {
        copy_elements(ctx.input(0), out);
        return;
      }
      binary_loop<T, T>(ctx.input(0), ctx.input(1), out, fn_);
      for (int i = 2; i < n; ++i) binary_loop<T, T>(out, ctx.input(i), out, fn_);
      if constexpr (requires { fn_.finish(compute_t<T>(), int64_t(0)); }) {
        T* po = out.data<T>();
        parallel_for(out.size(), 32768, [&](int64_t s, int64_t e) {
#pragma omp simd
          for (int64_t i = s; i < e; ++i) po[i] = from_compute<T>(fn_.finish(to_compute(po[i]), int64_t(n)));
        });
      }
    });
  }

 private:
  Fn fn_;
};

}  // namespace kiln
