// Clip: min(max(x, lo), hi). Opsets 6-10 take lo/hi from the float attributes min/max (floats
// only); from opset 11 they are optional scalar inputs of x's type (every numeric type from
// 12), defaulting to the type's range. lo > hi gives hi everywhere; NaN stays NaN.
#include <cfloat>
#include <limits>

#include "kiln/ops/common/elementwise.h"

namespace kiln {
namespace {

class Clip : public Kernel {
 public:
  explicit Clip(const ir::Node& node)
      : from_attrs_(node.opset < 11),
        lo_attr_(node.attr_float("min", -FLT_MAX)),
        hi_attr_(node.attr_float("max", FLT_MAX)) {}

  void prepare(OpContext& ctx) override {
    const Tensor& x = ctx.input(0);
    if (from_attrs_) {
      dispatch(AllFloatTypes{}, x.dtype(), "Clip (opset < 11)", []<typename T>() {});
    } else {
      dispatch(AllNumericTypes{}, x.dtype(), "Clip", []<typename T>() {});
      for (int i = 1; i <= 2 && i < ctx.num_inputs(); ++i) {
        if (!ctx.has_input(i)) continue;
        const Tensor& b = ctx.input(i);
        const char* what = i == 1 ? "min" : "max";
        if (b.dtype() != x.dtype())
          fail(ErrorCode::InvalidArgument, what, " is ", dtype_name(b.dtype()), " but input is ",
               dtype_name(x.dtype()));
        if (b.size() != 1)
          fail(ErrorCode::InvalidArgument, what, " must be a scalar, got shape ", shape_str(b.shape()));
      }
    }
    ctx.set_output(0, x.dtype(), x.shape());
  }

  void compute(OpContext& ctx) override {
    const Tensor& x = ctx.input(0);
    Tensor& out = ctx.output(0);
    dispatch(AllNumericTypes{}, x.dtype(), "Clip", [&]<typename T>() {
      using C = compute_t<T>;
      C lo = std::numeric_limits<C>::lowest(), hi = std::numeric_limits<C>::max();
      if constexpr (std::is_floating_point_v<C>) {
        if (from_attrs_) lo = C(lo_attr_), hi = C(hi_attr_);
      }
      if (!from_attrs_ && ctx.num_inputs() > 1 && ctx.has_input(1)) lo = to_compute(ctx.input(1).data<T>()[0]);
      if (!from_attrs_ && ctx.num_inputs() > 2 && ctx.has_input(2)) hi = to_compute(ctx.input(2).data<T>()[0]);
      const T* px = x.data<T>();
      T* po = out.data<T>();
      parallel_for(x.size(), 32768, [&](int64_t s, int64_t e) {
#pragma omp simd
        for (int64_t i = s; i < e; ++i) {
          C v = to_compute(px[i]);
          v = v < lo ? lo : v;
          po[i] = from_compute<T>(v > hi ? hi : v);
        }
      });
    });
  }

 private:
  bool from_attrs_;
  float lo_attr_, hi_attr_;
};

const OpRegistration kClip{"Clip", make_kernel<Clip>};

}  // namespace
}  // namespace kiln
