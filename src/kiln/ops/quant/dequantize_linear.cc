// DequantizeLinear (opsets 10, 13): y = (x - zero_point) * scale as float, with per-tensor
// parameters, or from opset 13 per slice along `axis`. An int32 x has no zero point (or 0).
#include "kiln/ops/quant/quant.h"

namespace kiln {
namespace {

class DequantizeLinear : public Kernel {
 public:
  explicit DequantizeLinear(const ir::Node& node) : axis_(node.opset >= 13 ? node.attr_int("axis", 1) : 1) {}

  void prepare(OpContext& ctx) override {
    const Tensor& x = ctx.input(0);
    dispatch(TypeList<uint8_t, int8_t, int32_t>{}, x.dtype(), "DequantizeLinear", []<typename T>() {});
    const Tensor& scale = ctx.input(1);
    layout_ = quant::per_axis(x.shape(), scale, axis_, "x_scale");
    if (ctx.has_input(2) && ctx.input(2).shape() != scale.shape())
      fail(ErrorCode::InvalidArgument, "x_zero_point ", shape_str(ctx.input(2).shape()), " must have x_scale's shape ",
           shape_str(scale.shape()));
    ctx.set_output(0, DType::Float32, x.shape());
  }

  void compute(OpContext& ctx) override {
    const Tensor& x = ctx.input(0);
    const std::vector<float> scale = quant::float_values(ctx.input(1), "x_scale");
    const std::vector<int32_t> zp = quant::zero_points(ctx, 2, x.dtype(), "x_zero_point");
    if (x.dtype() == DType::Int32)
      for (int32_t z : zp)
        if (z != 0) fail(ErrorCode::InvalidArgument, "an int32 input takes no zero point other than 0, got ", z);
    float* y = ctx.output(0).data<float>();
    dispatch(TypeList<uint8_t, int8_t, int32_t>{}, x.dtype(), "DequantizeLinear", [&]<typename T>() {
      const T* px = x.data<T>();
      quant::for_each_channel_run(layout_, [&](int64_t s, int64_t e, size_t ch) {
        const float sc = scale[ch];
        const int32_t z = zp.size() > 1 ? zp[ch] : zp[0];
#pragma omp simd
        for (int64_t i = s; i < e; ++i) y[i] = float(int32_t(px[i]) - z) * sc;
      });
    });
  }

 private:
  int64_t axis_;
  quant::PerAxis layout_;
};

const OpRegistration kDequantizeLinear{"", "DequantizeLinear", 10, make_kernel<DequantizeLinear>};

}  // namespace
}  // namespace kiln
