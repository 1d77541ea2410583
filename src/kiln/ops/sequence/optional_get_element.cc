// OptionalGetElement: the optional's value; an empty optional is an error.
#include "kiln/exec/kernel.h"

namespace kiln {
namespace {
class OptionalGetElement : public Kernel {
 public:
  explicit OptionalGetElement(const ir::Node&) {}
  void prepare(OpContext&) override {}
  void compute(OpContext& ctx) override {
    const Value& v = ctx.input_value(0);
    if (v.is_none()) fail(ErrorCode::InvalidArgument, "the optional input is empty");
    ctx.set_output_value(0, v);
  }
};
const OpRegistration kOptionalGetElement{"OptionalGetElement", make_kernel<OptionalGetElement>};
}  // namespace
}  // namespace kiln
