// NegativeLogLikelihoodLoss (opset 12, 13): input holds log-probabilities [N, C, D1..Dk].
#include "kiln/ops/loss/nll.h"

namespace kiln {
namespace {

class NegativeLogLikelihoodLoss : public Kernel {
 public:
  explicit NegativeLogLikelihoodLoss(const ir::Node& node)
      : reduction_(loss::parse_reduction(node)),
        has_ignore_(node.has_attr("ignore_index")),
        ignore_index_(node.attr_int("ignore_index", 0)) {}

  void prepare(OpContext& ctx) override {
    const Tensor& x = ctx.input(0);
    dispatch(loss::LossTypes{}, x.dtype(), "NegativeLogLikelihoodLoss", []<typename T>() {});
    geom_ = loss::nll_geometry(x, ctx.input(1), ctx.has_input(2) ? &ctx.input(2) : nullptr, reduction_);
    ctx.set_output(0, x.dtype(), geom_.loss_shape);
  }

  void compute(OpContext& ctx) override {
    const Tensor& x = ctx.input(0);
    const Tensor& target = ctx.input(1);
    const Tensor* weight = ctx.has_input(2) ? &ctx.input(2) : nullptr;
    Tensor& loss = ctx.output(0);
    dispatch(loss::LossTypes{}, x.dtype(), "NegativeLogLikelihoodLoss", [&]<typename T>() {
      dispatch(TypeList<int32_t, int64_t>{}, target.dtype(), "NegativeLogLikelihoodLoss target", [&]<typename TI>() {
        loss::nll_forward<T, TI>(x.data<T>(), target.data<TI>(), weight ? weight->data<T>() : nullptr, geom_,
                                 ignore_index_, has_ignore_, reduction_, loss.data<T>());
      });
    });
  }

 private:
  loss::Reduction reduction_;
  bool has_ignore_;
  int64_t ignore_index_;
  loss::NllGeometry geom_;
};

const OpRegistration kNegativeLogLikelihoodLoss{"", "NegativeLogLikelihoodLoss", 12,
                                                 make_kernel<NegativeLogLikelihoodLoss>};

}  // namespace
}  // namespace kiln
