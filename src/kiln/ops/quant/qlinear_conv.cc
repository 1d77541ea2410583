// QLinearConv (opset 10): the integer convolution of ConvInteger plus an int32 bias, rescaled
// to the output: y = saturate(round((acc + B) * x_scale * w_scale / y_scale) + y_zp), with W's
// scale and zero point per tensor or per output channel.
#include "kiln/ops/quant/quant.h"

namespace kiln {
namespace {

class QLinearConv : public Kernel {
 public:
  explicit QLinearConv(const KernelInit& init) : conv_(init.node), w_constant_(init.constant(3) != nullptr) {}

  void prepare(OpContext& ctx) override {
    const Tensor& x = ctx.input(0);
    const Tensor& w = ctx.input(3);
    dispatch(quant::QuantTypes{}, x.dtype(), "QLinearConv x", []<typename T>() {});
    dispatch(quant::QuantTypes{}, w.dtype(), "QLinearConv w", []<typename T>() {});
    out_type_ = ctx.input(7).dtype();
    dispatch(quant::QuantTypes{}, out_type_, "QLinearConv y_zero_point", []<typename T>() {});
    const Shape y = conv_.prepare(ctx.node(), x, w);
    if (ctx.has_input(8)) {
      const Tensor& bias = ctx.input(8);
      if (bias.dtype() != DType::Int32 || bias.shape() != Shape{conv_.out_channels()})
        fail(ErrorCode::InvalidArgument, "B must be int32 [", conv_.out_channels(), "], got ", dtype_name(bias.dtype()),
             " ", shape_str(bias.shape()));
    }
    ctx.set_output(0, out_type_, y);
  }

  void compute(OpContext& ctx) override {
    const Tensor& x = ctx.input(0);
    const Tensor& w = ctx.input(3);
    const std::vector<float> sx = quant::float_values(ctx.input(1), "x_scale");
    const std::vector<float> sw = quant::float_values(ctx.input(4), "w_scale");
    const std::vector<float> sy = quant::float_values(ctx.input(6), "y_scale");
    const std::vector<int32_t> zy = quant::zero_points(ctx, 7, out_type_, "y_zero_point");
    const int64_t m = conv_.out_channels();
    if (sx.size() != 1 || sy.size() != 1 || zy.size() != 1)
      fail(ErrorCode::InvalidArgument, "x_scale, y_scale and y_zero_point must be scalars");
    if (sw.size() != 1 && int64_t(sw.size()) != m)
      fail(ErrorCode::InvalidArgument, "w_scale must have 1 or ", m, " values, got ", sw.size());
    Tensor& y = ctx.output(0);
    std::vector<int32_t> acc(static_cast<size_t>(y.size()));
    conv_.run(x, w, quant::zero_points(ctx, 2, x.dtype(), "x_zero_point"),
              quant::zero_points(ctx, 5, w.dtype(), "w_zero_point"), acc.data(), w_constant_);
    const int32_t* bias = ctx.has_input(8) ? ctx.input(8).data<int32_t>() : nullptr;
    const int64_t plane = conv_.out_plane();
    const double zp = double(zy[0]);
    dispatch(quant::QuantTypes{}, out_type_, "y", [&]<typename Q>() {
      Q* py = y.data<Q>();
      // One (image, channel) plane per row: its scale and bias are fixed.
      parallel_for(y.size() / std::max<int64_t>(plane, 1), std::max<int64_t>(1, 16384 / std::max<int64_t>(plane, 1)),
                   [&](int64_t s, int64_t e) {
                     for (int64_t row = s; row < e; ++row) {
                       const int64_t ch = row % m;
                       const double mult = double(sx[0]) * double(sw[sw.size() == 1 ? 0 : size_t(ch)]) / double(sy[0]);
                       const double b = bias ? double(bias[ch]) : 0.0;
                       const int32_t* a = acc.data() + row * plane;
                       Q* out = py + row * plane;
#pragma omp simd
                       for (int64_t i = 0; i < plane; ++i) out[i] = quant::quantize_value<Q>((double(a[i]) + b) * mult, zp);
                     }
                   });
    });
  }

 private:
  DType out_type_ = DType::UInt8;
  quant::IntConv conv_;
  bool w_constant_;
};

const OpRegistration kQLinearConv{"", "QLinearConv", 10, make_kernel<QLinearConv>};

}  // namespace
}  // namespace kiln
