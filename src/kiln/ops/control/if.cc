// If: runs then_branch or else_branch; the branch's outputs become the node's outputs.
#include "kiln/ops/control/subgraph.h"

namespace kiln {
namespace {

class If : public Kernel {
 public:
  explicit If(const ir::Node& node) : then_(node, "then_branch"), else_(node, "else_branch") {}
  void prepare(OpContext&) override {}
  void compute(OpContext& ctx) override {
    const Tensor& cond = ctx.input(0);
    if (cond.size() != 1) fail(ErrorCode::InvalidArgument, "cond must hold one value, got shape ", shape_str(cond.shape()));
    const bool taken = cond.scalar_as_double() != 0;
    Subgraph& branch = taken ? then_ : else_;
    std::vector<Value> outs = branch.run(ctx.frame(), {});
    if (int(outs.size()) != ctx.num_outputs())
      fail(ErrorCode::InvalidGraph, taken ? "then" : "else", "_branch has ", outs.size(), " outputs, the node ",
           ctx.num_outputs());
    for (int i = 0; i < ctx.num_outputs(); ++i) ctx.set_output_value(i, std::move(outs[size_t(i)]));
  }

 private:
  Subgraph then_, else_;
};

const OpRegistration kIf{"If", make_kernel<If>};

}  // namespace
}  // namespace kiln
