// NegativeLogLikelihoodLoss (opset 12, 13): input holds log-probabilities [N, C, D1..Dk].
#include "kiln/ops/loss/nll.h"

namespace kiln {
namespace {

class NegativeLogLikelihoodLoss : public loss::NllKernel {
 public:
  explicit NegativeLogLikelihoodLoss(const ir::Node& node) : NllKernel(node, "NegativeLogLikelihoodLoss") {}
  void prepare(OpContext& ctx) override { prepare_loss(ctx); }
  void compute(OpContext& ctx) override { loss_from(ctx, ctx.input(0)); }
};

const OpRegistration kNegativeLogLikelihoodLoss{"", "NegativeLogLikelihoodLoss", 12,
                                                 make_kernel<NegativeLogLikelihoodLoss>};

}  // namespace
}  // namespace kiln
