// SequenceErase: a new sequence without the tensor at a position (default: the last).
#include "kiln/ops/sequence/sequence_util.h"

namespace kiln {
namespace {
class SequenceErase : public Kernel {
 public:
  explicit SequenceErase(const ir::Node&) {}
  void prepare(OpContext&) override {}
  void compute(OpContext& ctx) override {
    const Value& seq = ctx.input_value(0);
    std::vector<Tensor> items = seq.items();
    if (items.empty()) fail(ErrorCode::InvalidArgument, "cannot erase from an empty sequence");
    int64_t pos = ctx.has_input(1) ? sequence_position(ctx.input(1), int64_t(items.size()), false)
                                   : int64_t(items.size()) - 1;
    items.erase(items.begin() + pos);
    ctx.set_output_value(0, Value::sequence(std::move(items), seq.elem_type()));
  }
};
const OpRegistration kSequenceErase{"SequenceErase", make_kernel<SequenceErase>};
}  // namespace
}  // namespace kiln
