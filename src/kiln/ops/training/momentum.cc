// Momentum (ai.onnx.preview.training, opset 1): for each X with gradient G and momentum V:
//   g = norm_coefficient * X + G;  V' = alpha V + b g  (b = beta, or 1 at the first update T = 0)
//   standard: X' = X - R V';   nesterov: X' = X - R (g + alpha V')
#include "kiln/ops/training/optimizer.h"

namespace kiln {
namespace {

class Momentum : public Kernel {
 public:
  explicit Momentum(const ir::Node& node) {
    for (const char* a : {"alpha", "beta", "norm_coefficient", "mode"})
      if (!node.has_attr(a)) fail(ErrorCode::InvalidGraph, "attribute '", a, "' is required");
    alpha_ = node.attr_float("alpha", 0), beta_ = node.attr_float("beta", 0);
    norm_ = node.attr_float("norm_coefficient", 0);
    const std::string mode = node.attr_string("mode", "");
    if (mode != "standard" && mode != "nesterov")
      fail(ErrorCode::InvalidGraph, "mode must be 'standard' or 'nesterov', got '", mode, "'");
    nesterov_ = mode == "nesterov";
  }

  void prepare(OpContext& ctx) override { in_ = training::prepare_optimizer(ctx, 3); }

  void compute(OpContext& ctx) override {
    const training::OptimizerInputs o = training::read_scalars(ctx, in_);
    const double b = o.t > 0 ? beta_ : 1.0;
    for (int64_t i = 0; i < o.n; ++i) {
      const Tensor& x = ctx.input(int(2 + i));
      dispatch(training::OptimizerTypes{}, x.dtype(), "Momentum", [&]<typename T>() {
        const T* px = x.data<T>();
        const T* pg = ctx.input(int(2 + o.n + i)).data<T>();
        const T* pv = ctx.input(int(2 + 2 * o.n + i)).data<T>();
        T* xo = ctx.output(int(i)).data<T>();
        T* vo = ctx.output(int(o.n + i)).data<T>();
        parallel_for(x.size(), 16384, [&](int64_t s, int64_t e) {
          for (int64_t k = s; k < e; ++k) {
            const double g = norm_ * double(px[k]) + double(pg[k]);
            const double v = alpha_ * double(pv[k]) + b * g;
            vo[k] = T(v);
            xo[k] = T(double(px[k]) - o.r * (nesterov_ ? g + alpha_ * v : v));
          }
        });
      });
    }
  }

 private:
  double alpha_ = 0, beta_ = 0, norm_ = 0;
  bool nesterov_ = false;
  training::OptimizerInputs in_;
};

const OpRegistration kMomentum{"ai.onnx.preview.training", "Momentum", 1, make_kernel<Momentum>};

}  // namespace
}  // namespace kiln
