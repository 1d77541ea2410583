// DynamicQuantizeLinear (opset 11): quantizes float x to uint8 over the range [min(x, 0),
// max(x, 0)]: scale = range / 255, zero_point = saturate(round(-min / scale)),
// y = saturate(round(x / scale) + zero_point). The float32 arithmetic follows ONNX's reference.
#include "kiln/ops/quant/quant.h"

namespace kiln {
namespace {

class DynamicQuantizeLinear : public Kernel {
 public:
  explicit DynamicQuantizeLinear(const ir::Node&) {}

  void prepare(OpContext& ctx) override {
    const Tensor& x = ctx.input(0);
    if (x.dtype() != DType::Float32) fail(ErrorCode::InvalidArgument, "x must be float, got ", dtype_name(x.dtype()));
    ctx.set_output(0, DType::UInt8, x.shape());
    ctx.set_output(1, DType::Float32, {});
    ctx.set_output(2, DType::UInt8, {});
  }

  void compute(OpContext& ctx) override {
    const Tensor& x = ctx.input(0);
    const float* px = x.data<float>();
    const int64_t n = x.size();
    float lo = 0, hi = 0;  // the range always holds 0, so 0 quantizes exactly
    for (int64_t i = 0; i < n; ++i) {
      if (std::isnan(px[i])) fail(ErrorCode::InvalidArgument, "x holds NaN at index ", i);
      lo = std::min(lo, px[i]);
      hi = std::max(hi, px[i]);
    }
    const float scale = (hi - lo) / 255.0f;
    // An all-zero x gives scale 0: every value maps to zero point 0.
    const uint8_t zp = scale == 0 ? 0 : quant::quantize_value<uint8_t>((0.0f - lo) / scale, 0);
    uint8_t* y = ctx.output(0).data<uint8_t>();
    parallel_for(n, 32768, [&](int64_t s, int64_t e) {
      if (scale == 0) {
        std::fill(y + s, y + e, uint8_t(0));
        return;
      }
#pragma omp simd
      for (int64_t i = s; i < e; ++i) y[i] = quant::quantize_value<uint8_t>(px[i] / scale, double(zp));
    });
    ctx.output(1).data<float>()[0] = scale;
    ctx.output(2).data<uint8_t>()[0] = zp;
  }
};

const OpRegistration kDynamicQuantizeLinear{"", "DynamicQuantizeLinear", 11, make_kernel<DynamicQuantizeLinear>};

}  // namespace
}  // namespace kiln
