// Adam (ai.onnx.preview.training, opset 1): for each X with gradient G, momentum V and
// second-order momentum H:
//   g = norm_coefficient * X + G;  V' = alpha V + (1 - alpha) g;  H' = beta H + (1 - beta) g^2
//   r' = T > 0 ? R sqrt(1 - beta^T) / (1 - alpha^T) : R   (bias correction)
//   X' = (1 - norm_coefficient_post) (X - r' V' / (sqrt(H') + epsilon))
#include <cmath>

#include "kiln/ops/training/optimizer.h"

namespace kiln {
namespace {

class Adam : public Kernel {
 public:
  explicit Adam(const ir::Node& node)
      : alpha_(node.attr_float("alpha", 0.9f)), beta_(node.attr_float("beta", 0.999f)),
        eps_(node.attr_float("epsilon", 1e-6f)), norm_(node.attr_float("norm_coefficient", 0.0f)),
        norm_post_(node.attr_float("norm_coefficient_post", 0.0f)) {}

  void prepare(OpContext& ctx) override { in_ = training::prepare_optimizer(ctx, 4); }

  void compute(OpContext& ctx) override {
    const training::OptimizerInputs o = training::read_scalars(ctx, in_);
    const double t = double(o.t);
    const double r = o.t > 0 ? o.r * std::sqrt(1.0 - std::pow(beta_, t)) / (1.0 - std::pow(alpha_, t)) : o.r;
    for (int64_t i = 0; i < o.n; ++i) {
      const Tensor& x = ctx.input(int(2 + i));
      dispatch(training::OptimizerTypes{}, x.dtype(), "Adam", [&]<typename T>() {
        const T* px = x.data<T>();
        const T* pg = ctx.input(int(2 + o.n + i)).data<T>();
        const T* pv = ctx.input(int(2 + 2 * o.n + i)).data<T>();
        const T* ph = ctx.input(int(2 + 3 * o.n + i)).data<T>();
        T* xo = ctx.output(int(i)).data<T>();
        T* vo = ctx.output(int(o.n + i)).data<T>();
        T* ho = ctx.output(int(2 * o.n + i)).data<T>();
        parallel_for(x.size(), 16384, [&](int64_t s, int64_t e) {
          for (int64_t k = s; k < e; ++k) {
            const double g = norm_ * double(px[k]) + double(pg[k]);
            const double v = alpha_ * double(pv[k]) + (1.0 - alpha_) * g;
            const double h = beta_ * double(ph[k]) + (1.0 - beta_) * g * g;
            vo[k] = T(v);
            ho[k] = T(h);
            xo[k] = T((1.0 - norm_post_) * (double(px[k]) - r * v / (std::sqrt(h) + eps_)));
          }
        });
      });
    }
  }

 private:
  double alpha_, beta_, eps_, norm_, norm_post_;
  training::OptimizerInputs in_;
};

const OpRegistration kAdam{"ai.onnx.preview.training", "Adam", 1, make_kernel<Adam>};

}  // namespace
}  // namespace kiln
