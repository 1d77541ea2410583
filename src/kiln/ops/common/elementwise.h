// Building blocks for elementwise ops. An op file supplies a functor and a type list:
//
//   struct AddFn { template <typename T> T operator()(T a, T b) const { return a + b; } };
//   const OpRegistration kAdd{"Add", make_kernel<Binary<AddFn, NumericTypes>>};
//
// Functors may take the node in their constructor to read attributes (LeakyRelu's alpha).
#pragma once

#include <type_traits>

#include "kiln/exec/kernel.h"
#include "kiln/ops/common/broadcast.h"

namespace kiln {

template <typename Fn>
Fn make_functor(const ir::Node& node) {
  if constexpr (std::is_constructible_v<Fn, const ir::Node&>) return Fn(node);
  else return Fn();
}

// out[i] = fn(a[i], b[i]) with broadcasting; R is the output element type.
template <typename T, typename R, typename Fn>
void binary_loop(const Tensor& a, const Tensor& b, Tensor& out, const Fn& fn) {
  const T* pa = a.data<T>();
  const T* pb = b.data<T>();
  R* po = out.data<R>();
  const int64_t n = out.size();
  constexpr int64_t kGrain = 32768;
  if (a.size() == n && b.size() == n) {
    parallel_for(n, kGrain, [&](int64_t s, int64_t e) {
#pragma omp simd
      for (int64_t i = s; i < e; ++i) po[i] = fn(pa[i], pb[i]);
    });
  } else if (b.size() == 1 && a.size() == n) {
    const T vb = pb[0];
    parallel_for(n, kGrain, [&](int64_t s, int64_t e) {
#pragma omp simd
      for (int64_t i = s; i < e; ++i) po[i] = fn(pa[i], vb);
    });
  } else if (a.size() == 1 && b.size() == n) {
    const T va = pa[0];
    parallel_for(n, kGrain, [&](int64_t s, int64_t e) {
#pragma omp simd
      for (int64_t i = s; i < e; ++i) po[i] = fn(va, pb[i]);
    });
  } else {
    BroadcastWalk walk = make_broadcast_walk(out.shape(), {a.shape(), b.shape()});
    const int64_t inner = walk.inner();
    const int64_t sa = walk.strides[0].back(), sb = walk.strides[1].back();
    for_each_broadcast_row(walk, [&](int64_t row, const int64_t* off) {
      const T* ra = pa + off[0];
      const T* rb = pb + off[1];
      R* ro = po + row * inner;
      if (sa == 1 && sb == 1) {
        for (int64_t i = 0; i < inner; ++i) ro[i] = fn(ra[i], rb[i]);
      } else if (sa == 1 && sb == 0) {
        const T vb = rb[0];
        for (int64_t i = 0; i < inner; ++i) ro[i] = fn(ra[i], vb);
      } else if (sa == 0 && sb == 1) {
        const T va = ra[0];
        for (int64_t i = 0; i < inner; ++i) ro[i] = fn(va, rb[i]);
      } else {
        for (int64_t i = 0; i < inner; ++i) ro[i] = fn(ra[i * sa], rb[i * sb]);
      }
    });
  }
}

// A broadcasting binary op over the types in `Types`. With BoolOut the result is bool
// (comparisons); otherwise it has the inputs' type.
template <typename Fn, typename Types, bool BoolOut = false>
class Binary : public Kernel {
 public:
  explicit Binary(const ir::Node& node) : fn_(make_functor<Fn>(node)) {}
  void prepare(OpContext& ctx) override {
    const Tensor& a = ctx.input(0);
    const Tensor& b = ctx.input(1);
    if (a.dtype() != b.dtype())
      fail(ErrorCode::InvalidArgument, "inputs have different element types: ", dtype_name(a.dtype()), " and ",
           dtype_name(b.dtype()));
    ctx.set_output(0, BoolOut ? DType::Bool : a.dtype(), broadcast_shapes({a.shape(), b.shape()}));
  }
  void compute(OpContext& ctx) override {
    const Tensor& a = ctx.input(0);
    const Tensor& b = ctx.input(1);
    Tensor& out = ctx.output(0);
    dispatch(Types{}, a.dtype(), ctx.node().op_type.c_str(), [&]<typename T>() {
      if constexpr (BoolOut) binary_loop<T, bool>(a, b, out, fn_);
      else binary_loop<T, T>(a, b, out, fn_);
    });
  }

 private:
  Fn fn_;
};

// out[i] = fn(x[i]) over the types in `Types`.
template <typename Fn, typename Types>
class Unary : public Kernel {
 public:
  explicit Unary(const ir::Node& node) : fn_(make_functor<Fn>(node)) {}
  void prepare(OpContext& ctx) override { ctx.set_output(0, ctx.input(0).dtype(), ctx.input(0).shape()); }
  void compute(OpContext& ctx) override {
    const Tensor& x = ctx.input(0);
    Tensor& out = ctx.output(0);
    dispatch(Types{}, x.dtype(), ctx.node().op_type.c_str(), [&]<typename T>() {
      const T* px = x.data<T>();
      T* po = out.data<T>();
      parallel_for(x.size(), 16384, [&](int64_t s, int64_t e) {
#pragma omp simd
        for (int64_t i = s; i < e; ++i) po[i] = fn_(px[i]);
      });
    });
  }

 private:
  Fn fn_;
};

}  // namespace kiln
