// HannWindow, HammingWindow and BlackmanWindow (opset 17): generalized cosine windows
//   w[n] = a0 - a1 cos(2 pi n / N) + a2 cos(4 pi n / N)
// of `size` values (input 0, a scalar), with N = size (periodic=1, the default) or size - 1
// (symmetric). The output type is output_datatype (float by default).
#pragma once

#include <cmath>
#include <numbers>

#include "kiln/ops/common/elementwise.h"

namespace kiln::signal {

template <typename Coeffs>
class CosineWindow : public Kernel {
 public:
  explicit CosineWindow(const ir::Node& node)
      : periodic_(node.attr_int("periodic", 1) != 0),
        dtype_(DType(node.attr_int("output_datatype", int64_t(DType::Float32)))) {
    if (!dtype_valid(int32_t(dtype_)) || dtype_ == DType::String || dtype_ == DType::Bool)
      fail(ErrorCode::InvalidGraph, "output_datatype ", int64_t(dtype_), " is not a numeric type");
  }

  void prepare(OpContext& ctx) override {
    const Tensor& size = ctx.input(0);
    if (size.size() != 1 || (size.dtype() != DType::Int32 && size.dtype() != DType::Int64))
      fail(ErrorCode::InvalidArgument, "size must be an int32 or int64 scalar, got ", dtype_name(size.dtype()), " ",
           shape_str(size.shape()));
    n_ = size.to_int64s()[0];
    if (n_ < 0) fail(ErrorCode::InvalidArgument, "size must not be negative, got ", n_);
    dispatch(AllNumericTypes{}, dtype_, "window", []<typename T>() {});
    ctx.set_output(0, dtype_, {n_});
  }

  void compute(OpContext& ctx) override {
    const double denom = periodic_ ? double(n_) : double(n_ - 1);
    dispatch(AllNumericTypes{}, dtype_, "window", [&]<typename T>() {
      T* y = ctx.output(0).data<T>();
      for (int64_t i = 0; i < n_; ++i) {
        // A symmetric window of one value is 0/0: take it as the window's centre value, 1.
        const double t = denom > 0 ? 2.0 * std::numbers::pi * double(i) / denom : 0.0;
        y[i] = from_compute<T>(Coeffs::a0 - Coeffs::a1 * std::cos(t) + Coeffs::a2 * std::cos(2 * t));
      }
    });
  }

  std::vector<int> value_inputs() const override { return {0}; }

 private:
  bool periodic_;
  DType dtype_;
  int64_t n_ = 0;
};

}  // namespace kiln::signal
