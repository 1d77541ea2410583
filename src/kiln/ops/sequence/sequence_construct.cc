// SequenceConstruct: a sequence of the inputs, which share one element type.
#include "kiln/exec/kernel.h"

namespace kiln {
namespace {
class SequenceConstruct : public Kernel {
 public:
  explicit SequenceConstruct(const ir::Node&) {}
  void prepare(OpContext&) override {}
  void compute(OpContext& ctx) override {
    std::vector<Tensor> items;
    for (int i = 0; i < ctx.num_inputs(); ++i) {
      items.push_back(ctx.input(i));
      if (items.back().dtype() != items.front().dtype())
        fail(ErrorCode::InvalidArgument, "input ", i, " is ", dtype_name(items.back().dtype()), ", input 0 is ",
             dtype_name(items.front().dtype()));
    }
    DType t = items.empty() ? DType::Float32 : items.front().dtype();
    ctx.set_output_value(0, Value::sequence(std::move(items), t));
  }
};
const OpRegistration kSequenceConstruct{"SequenceConstruct", make_kernel<SequenceConstruct>};
}  // namespace
}  // namespace kiln
