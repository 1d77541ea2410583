// ConstantOfShape: a tensor of the given shape filled with the one-element `value` attribute
// (float 0 when absent); its type is the value's.
#include "kiln/ops/tensor/tensor_copy.h"

namespace kiln {
namespace {
class ConstantOfShape : public Kernel {
 public:
  explicit ConstantOfShape(const ir::Node& node) {
    if (const auto* a = node.attr("value")) {
      if (a->t.size() != 1)
        fail(ErrorCode::InvalidGraph, "value must hold exactly one element, got shape ", shape_str(a->t.shape()));
      value_ = a->t;
    } else {
      value_ = Tensor(DType::Float32, {1});
      value_.data<float>()[0] = 0.0f;
    }
  }
  void prepare(OpContext& ctx) override {
    const Tensor& s = ctx.input(0);
    if (s.dtype() != DType::Int64) fail(ErrorCode::InvalidArgument, "input must be int64, got ", dtype_name(s.dtype()));
    if (s.rank() != 1) fail(ErrorCode::InvalidArgument, "input must be 1-D, got shape ", shape_str(s.shape()));
    Shape out = s.to_int64s();
    for (int64_t d : out)
      if (d < 0) fail(ErrorCode::InvalidArgument, "shape ", shape_str(out), " has a negative dimension");
    tensor_ops::check_shape_size(out, "shape");
    ctx.set_output(0, value_.dtype(), out);
  }
  void compute(OpContext& ctx) override {
    Tensor& y = ctx.output(0);
    tensor_ops::dispatch_elements(value_.dtype(), [&]<typename T>() {
      const T v = tensor_ops::elems<T>(value_)[0];
      T* dst = tensor_ops::elems<T>(y);
      parallel_for(y.size(), 1 << 16, [&](int64_t b, int64_t e) { std::fill(dst + b, dst + e, v); });
    });
  }
  std::vector<int> value_inputs() const override { return {0}; }

 private:
  Tensor value_;
};
const OpRegistration kConstantOfShape{"ConstantOfShape", make_kernel<ConstantOfShape>};
}  // namespace
}  // namespace kiln
