// QuantizeLinear (opsets 10, 13): y = saturate(round_half_even(x / scale) + zero_point), with
// per-tensor parameters, or from opset 13 per slice along `axis`. The zero point's type (uint8
// by default) is the output's.
#include "kiln/ops/quant/quant.h"

namespace kiln {
namespace {

class QuantizeLinear : public Kernel {
 public:
  explicit QuantizeLinear(const ir::Node& node) : axis_(node.opset >= 13 ? node.attr_int("axis", 1) : 1) {}

  void prepare(OpContext& ctx) override {
    const Tensor& x = ctx.input(0);
    if (x.dtype() != DType::Float32 && x.dtype() != DType::Int32)
      fail(ErrorCode::InvalidArgument, "x must be float or int32, got ", dtype_name(x.dtype()));
    const Tensor& scale = ctx.input(1);
    out_type_ = ctx.has_input(2) ? ctx.input(2).dtype() : DType::UInt8;
    if (out_type_ != DType::UInt8 && out_type_ != DType::Int8)
      fail(ErrorCode::InvalidArgument, "y_zero_point must be uint8 or int8, got ", dtype_name(out_type_));
    layout_ = quant::per_axis(x.shape(), scale, axis_, "y_scale");
    if (ctx.has_input(2) && ctx.input(2).shape() != scale.shape())
      fail(ErrorCode::InvalidArgument, "y_zero_point ", shape_str(ctx.input(2).shape()), " must have y_scale's shape ",
           shape_str(scale.shape()));
    ctx.set_output(0, out_type_, x.shape());
  }

  void compute(OpContext& ctx) override {
    const Tensor& x = ctx.input(0);
    const std::vector<float> scale = quant::float_values(ctx.input(1), "y_scale");
    const std::vector<int32_t> zp = quant::zero_points(ctx, 2, out_type_, "y_zero_point");
    dispatch(quant::QuantTypes{}, out_type_, "QuantizeLinear", [&]<typename Q>() {
      Q* y = ctx.output(0).data<Q>();
      dispatch(TypeList<float, int32_t>{}, x.dtype(), "QuantizeLinear", [&]<typename T>() {
        const T* px = x.data<T>();
        quant::for_each_channel_run(layout_, [&](int64_t s, int64_t e, size_t ch) {
          const float sc = scale[ch];
          const double z = zp.size() > 1 ? zp[ch] : zp[0];
#pragma omp simd
          for (int64_t i = s; i < e; ++i) y[i] = quant::quantize_value<Q>(float(px[i]) / sc, z);
        });
      });
    });
  }

 private:
  int64_t axis_;
  DType out_type_ = DType::UInt8;
  quant::PerAxis layout_;
};

const OpRegistration kQuantizeLinear{"", "QuantizeLinear", 10, make_kernel<QuantizeLinear>};

}  // namespace
}  // namespace kiln
