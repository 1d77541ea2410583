// Adagrad (ai.onnx.preview.training, opset 1): for each X with gradient G and accumulated
// squared gradient H:
//   r' = R / (1 + T * decay_factor);  g = norm_coefficient * X + G;  H' = H + g^2
//   X' = X - r' * g / (sqrt(H') + epsilon)
#include <cmath>

#include "kiln/ops/training/optimizer.h"

namespace kiln {
namespace {

class Adagrad : public Kernel {
 public:
  explicit Adagrad(const ir::Node& node)
      : decay_(node.attr_float("decay_factor", 0.0f)), eps_(node.attr_float("epsilon", 1e-6f)),
        norm_(node.attr_float("norm_coefficient", 0.0f)) {}

  void prepare(OpContext& ctx) override { in_ = training::prepare_optimizer(ctx, 3); }

  void compute(OpContext& ctx) override {
    const training::OptimizerInputs o = training::read_scalars(ctx, in_);
    const double r = o.r / (1.0 + double(o.t) * decay_);
    for (int64_t i = 0; i < o.n; ++i) {
      const Tensor& x = ctx.input(int(2 + i));
      dispatch(training::OptimizerTypes{}, x.dtype(), "Adagrad", [&]<typename T>() {
        const T* px = x.data<T>();
        const T* pg = ctx.input(int(2 + o.n + i)).data<T>();
        const T* ph = ctx.input(int(2 + 2 * o.n + i)).data<T>();
        T* xo = ctx.output(int(i)).data<T>();
        T* ho = ctx.output(int(o.n + i)).data<T>();
        parallel_for(x.size(), 16384, [&](int64_t s, int64_t e) {
          for (int64_t k = s; k < e; ++k) {
            const double g = norm_ * double(px[k]) + double(pg[k]);
            const double h = double(ph[k]) + g * g;
            ho[k] = T(h);
            xo[k] = T(double(px[k]) - r * g / (std::sqrt(h) + eps_));
          }
        });
      });
    }
  }

 private:
  double decay_, eps_, norm_;
  training::OptimizerInputs in_;
};

const OpRegistration kAdagrad{"ai.onnx.preview.training", "Adagrad", 1, make_kernel<Adagrad>};

}  // namespace
}  // namespace kiln
