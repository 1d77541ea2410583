// OptionalHasElement: whether the optional holds a value (an omitted input holds none).
#include "kiln/exec/kernel.h"

namespace kiln {
namespace {
class OptionalHasElement : public Kernel {
 public:
  explicit OptionalHasElement(const ir::Node&) {}
  void prepare(OpContext&) override {}
  void compute(OpContext& ctx) override {
    Tensor& out = ctx.allocate_output(0, DType::Bool, {});
    out.data<bool>()[0] = ctx.has_input(0) && !ctx.input_value(0).is_none();
  }
};
const OpRegistration kOptionalHasElement{"OptionalHasElement", make_kernel<OptionalHasElement>};
}  // namespace
}  // namespace kiln
