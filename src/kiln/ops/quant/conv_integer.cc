// ConvInteger (opset 10): convolution of 8-bit X and W after subtracting their zero points
// (X's per tensor, W's per tensor or per output channel), accumulated in int32.
#include "kiln/ops/quant/quant.h"

namespace kiln {
namespace {

class ConvInteger : public Kernel {
 public:
  explicit ConvInteger(const KernelInit& init) : conv_(init.node), w_constant_(init.constant(1) != nullptr) {}

  void prepare(OpContext& ctx) override {
    const Tensor& x = ctx.input(0);
    const Tensor& w = ctx.input(1);
    dispatch(quant::QuantTypes{}, x.dtype(), "ConvInteger x", []<typename T>() {});
    dispatch(quant::QuantTypes{}, w.dtype(), "ConvInteger w", []<typename T>() {});
    ctx.set_output(0, DType::Int32, conv_.prepare(ctx.node(), x, w));
  }

  void compute(OpContext& ctx) override {
    const Tensor& x = ctx.input(0);
    const Tensor& w = ctx.input(1);
    conv_.run(x, w, quant::zero_points(ctx, 2, x.dtype(), "x_zero_point"),
              quant::zero_points(ctx, 3, w.dtype(), "w_zero_point"), ctx.output(0).data<int32_t>(), w_constant_);
  }

 private:
  quant::IntConv conv_;
  bool w_constant_;
};

const OpRegistration kConvInteger{"", "ConvInteger", 10, make_kernel<ConvInteger>};

}  // namespace
}  // namespace kiln
