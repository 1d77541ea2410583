// SequenceEmpty: an empty sequence of the `dtype` attribute's type (float by default).
#include "kiln/exec/kernel.h"

namespace kiln {
namespace {
class SequenceEmpty : public Kernel {
 public:
  explicit SequenceEmpty(const ir::Node& node) : dtype_(DType(node.attr_int("dtype", int64_t(DType::Float32)))) {}
  void prepare(OpContext&) override {}
  void compute(OpContext& ctx) override { ctx.set_output_value(0, Value::sequence({}, dtype_)); }

 private:
  DType dtype_;
};
const OpRegistration kSequenceEmpty{"SequenceEmpty", make_kernel<SequenceEmpty>};
}  // namespace
}  // namespace kiln
