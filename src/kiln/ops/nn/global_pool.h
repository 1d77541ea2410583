// GlobalAveragePool, GlobalMaxPool and GlobalLpPool: one value per (n, c) plane, kept as
// [N, C, 1, ...]. A functor reduces each contiguous plane; planes are split across threads.
#pragma once

#include <limits>

#include "kiln/core/parallel.h"
#include "kiln/exec/kernel.h"
#include "kiln/ops/common/elementwise.h"

namespace kiln::nn {

template <typename Reduce>
class GlobalPool : public Kernel {
 public:
  explicit GlobalPool(const ir::Node& node) : reduce_(make_functor<Reduce>(node)) {}

  void prepare(OpContext& ctx) override {
    const Tensor& x = ctx.input(0);
    if (x.rank() < 3)
      fail(ErrorCode::InvalidArgument, "X must be [N, C, D1, ...] with at least one spatial dimension, got ",
           shape_str(x.shape()));
    if (x.dtype() != DType::Float32 && x.dtype() != DType::Float64)
      fail(ErrorCode::NotImplemented, "element type ", dtype_name(x.dtype()), " is not supported (float and double are)");
    Shape y(size_t(x.rank()), 1);
    y[0] = x.dim(0), y[1] = x.dim(1);
    ctx.set_output(0, x.dtype(), y);
  }

  void compute(OpContext& ctx) override {
    const Tensor& x = ctx.input(0);
    Tensor& y = ctx.output(0);
    const int64_t planes = y.size();
    if (planes == 0) return;
    const int64_t plane = x.size() / planes;
    dispatch(FloatTypes{}, x.dtype(), ctx.node().op_type.c_str(), [&]<typename T>() {
      const T* px = x.data<T>();
      T* py = y.data<T>();
      parallel_for(planes, std::max<int64_t>(1, 16384 / std::max<int64_t>(plane, 1)), [&](int64_t begin, int64_t end) {
        for (int64_t p = begin; p < end; ++p) py[p] = reduce_.template operator()<T>(px + p * plane, plane);
      });
    });
  }

 private:
  Reduce reduce_;
};

}  // namespace kiln::nn
