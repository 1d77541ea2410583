// Dropout at inference: the output is the input itself and the optional mask keeps every
// element (true; ones of the input type before opset 10). Training mode (the training_mode
// input from opset 12) drops at random and is refused, unless the ratio is 0 and it drops
// nothing.
#include "kiln/ops/tensor/tensor_copy.h"

namespace kiln {
namespace {
class Dropout : public Kernel {
 public:
  explicit Dropout(const ir::Node& node) : bool_mask_(node.opset >= 10) {}
  void prepare(OpContext& ctx) override {
    const Tensor& x = ctx.input(0);
    if (ctx.has_input(2)) {
      const Tensor& t = ctx.input(2);
      if (t.dtype() != DType::Bool || t.size() != 1)
        fail(ErrorCode::InvalidArgument, "training_mode must be a bool scalar, got ", dtype_name(t.dtype()), " ",
             shape_str(t.shape()));
    }
    if (!bool_mask_ && x.dtype() != DType::Float32 && x.dtype() != DType::Float64 && x.dtype() != DType::Float16)
      fail(ErrorCode::NotImplemented, "element type ", dtype_name(x.dtype()), " is not supported");
    if (ctx.num_outputs() > 1) ctx.set_output(1, bool_mask_ ? DType::Bool : x.dtype(), x.shape());
  }
  void compute(OpContext& ctx) override {
    const Tensor& x = ctx.input(0);
    if (ctx.has_input(2) && ctx.input(2).data<bool>()[0]) {
      const double ratio = ctx.has_input(1) ? ctx.input(1).scalar_as_double() : 0.5;
      if (ratio != 0.0)
        fail(ErrorCode::NotImplemented, "training_mode=true is not supported (ratio ", ratio,
             "): Kiln runs inference only");
    }
    ctx.set_output_tensor(0, x);
    if (!ctx.has_output(1)) return;
    Tensor& mask = ctx.output(1);
    if (bool_mask_) {
      std::fill_n(mask.data<bool>(), mask.size(), true);
    } else if (x.dtype() == DType::Float16) {
      std::fill_n(mask.data<Float16>(), mask.size(), Float16{float_to_half(1.0f)});
    } else {
      dispatch(FloatTypes{}, x.dtype(), "Dropout mask", [&]<typename T>() { std::fill_n(mask.data<T>(), mask.size(), T(1)); });
    }
  }

 private:
  bool bool_mask_;
};
const OpRegistration kDropout{"Dropout", make_kernel<Dropout>};
}  // namespace
}  // namespace kiln
