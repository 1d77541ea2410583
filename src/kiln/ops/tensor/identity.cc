// Identity: the output is the input's value itself (a tensor, from opset 14 a sequence, from 16
// an optional); the run copies a tensor only if it leaves the graph.
#include "kiln/exec/kernel.h"

namespace kiln {
namespace {
class Identity : public Kernel {
 public:
  explicit Identity(const ir::Node&) {}
  void prepare(OpContext&) override {}
  void compute(OpContext& ctx) override { ctx.set_output_value(0, ctx.input_value(0)); }
};
const OpRegistration kIdentity{"Identity", make_kernel<Identity>};
}  // namespace
}  // namespace kiln
