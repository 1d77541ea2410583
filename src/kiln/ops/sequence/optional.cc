// Optional: wraps its input, or makes an empty optional when the input is omitted.
#include "kiln/exec/kernel.h"

namespace kiln {
namespace {
class Optional : public Kernel {
 public:
  explicit Optional(const ir::Node&) {}
  void prepare(OpContext&) override {}
  void compute(OpContext& ctx) override {
    ctx.set_output_value(0, ctx.has_input(0) ? ctx.input_value(0) : Value::none());
  }
};
const OpRegistration kOptional{"Optional", make_kernel<Optional>};
}  // namespace
}  // namespace kiln
