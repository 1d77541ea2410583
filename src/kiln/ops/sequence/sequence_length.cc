// SequenceLength: the number of tensors, as an int64 scalar.
#include "kiln/exec/kernel.h"

namespace kiln {
namespace {
class SequenceLength : public Kernel {
 public:
  explicit SequenceLength(const ir::Node&) {}
  void prepare(OpContext&) override {}
  void compute(OpContext& ctx) override {
    Tensor& out = ctx.allocate_output(0, DType::Int64, {});
    out.data<int64_t>()[0] = int64_t(ctx.input_value(0).items().size());
  }
};
const OpRegistration kSequenceLength{"SequenceLength", make_kernel<SequenceLength>};
}  // namespace
}  // namespace kiln
