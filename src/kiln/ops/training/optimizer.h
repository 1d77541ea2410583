// Shared input handling of the ai.onnx.preview.training optimizers (Adagrad, Adam, Momentum):
// inputs are R (learning rate, scalar), T (update count, int64 scalar) and then `groups`
// lists of n tensors each (X..., G..., and the optimizer's state lists); the outputs are the
// updated X list followed by the updated state lists. Each optimized tensor is updated
// element by element, in double precision.
#pragma once

#include <string>

#include "kiln/core/parallel.h"
#include "kiln/exec/kernel.h"

namespace kiln::training {

using OptimizerTypes = TypeList<float, double>;

struct OptimizerInputs {
  int64_t n = 0;  // tensors optimized
  double r = 0;
  int64_t t = 0;
};

// Checks the layout (2 + groups * n inputs, (groups - 1) * n outputs, matching shapes and
// types within each tensor's lists) and declares the outputs with the X tensors' shapes.
inline OptimizerInputs prepare_optimizer(OpContext& ctx, int groups) {
  const int in = ctx.num_inputs() - 2;
  if (in <= 0 || in % groups != 0)
    fail(ErrorCode::InvalidGraph, "expected R, T and ", groups, " lists of equal length, got ", ctx.num_inputs(),
         " inputs");
  OptimizerInputs o;
  o.n = in / groups;
  if (ctx.num_outputs() != (groups - 1) * o.n)
    fail(ErrorCode::InvalidGraph, "expected ", (groups - 1) * o.n, " outputs for ", o.n, " optimized tensors, got ",
         ctx.num_outputs());
  const Tensor& r = ctx.input(0);
  const Tensor& t = ctx.input(1);
  if (r.size() != 1 || (r.dtype() != DType::Float32 && r.dtype() != DType::Float64))
    fail(ErrorCode::InvalidArgument, "R must be a float or double scalar, got ", dtype_name(r.dtype()), " ",
         shape_str(r.shape()));
  if (t.size() != 1 || t.dtype() != DType::Int64)
    fail(ErrorCode::InvalidArgument, "T must be an int64 scalar, got ", dtype_name(t.dtype()), " ", shape_str(t.shape()));
  for (int64_t i = 0; i < o.n; ++i) {
    const Tensor& x = ctx.input(int(2 + i));
    dispatch(OptimizerTypes{}, x.dtype(), ctx.node().op_type.c_str(), []<typename T>() {});
    for (int g = 1; g < groups; ++g) {
      const Tensor& other = ctx.input(int(2 + g * o.n + i));
      if (other.dtype() != x.dtype() || other.shape() != x.shape())
        fail(ErrorCode::InvalidArgument, "input ", 2 + g * o.n + i, " is ", dtype_name(other.dtype()), " ",
             shape_str(other.shape()), " but X ", i, " is ", dtype_name(x.dtype()), " ", shape_str(x.shape()));
    }
    for (int g = 0; g + 1 < groups; ++g) ctx.set_output(int(g * o.n + i), x.dtype(), x.shape());
  }
  return o;
}

inline OptimizerInputs read_scalars(OpContext& ctx, OptimizerInputs o) {
  o.r = ctx.input(0).scalar_as_double();
  o.t = ctx.input(1).to_int64s()[0];
  return o;
}

}  // namespace kiln::training
