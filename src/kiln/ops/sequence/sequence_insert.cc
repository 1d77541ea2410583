// SequenceInsert: a new sequence with the tensor inserted at a position (default: the end).
#include "kiln/ops/sequence/sequence_util.h"

namespace kiln {
namespace {
class SequenceInsert : public Kernel {
 public:
  explicit SequenceInsert(const ir::Node&) {}
  void prepare(OpContext&) override {}
  void compute(OpContext& ctx) override {
    const Value& seq = ctx.input_value(0);
    std::vector<Tensor> items = seq.items();
    const Tensor& t = ctx.input(1);
    if (seq.elem_type() != DType::Undefined && t.dtype() != seq.elem_type())
      fail(ErrorCode::InvalidArgument, "cannot insert a ", dtype_name(t.dtype()), " tensor into a sequence of ",
           dtype_name(seq.elem_type()));
    int64_t pos = ctx.has_input(2) ? sequence_position(ctx.input(2), int64_t(items.size()), true) : int64_t(items.size());
    items.insert(items.begin() + pos, t);
    ctx.set_output_value(0, Value::sequence(std::move(items), t.dtype()));
  }
};
const OpRegistration kSequenceInsert{"SequenceInsert", make_kernel<SequenceInsert>};
}  // namespace
}  // namespace kiln
