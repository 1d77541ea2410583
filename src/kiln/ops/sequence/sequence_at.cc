// SequenceAt: the tensor at a position (negative counts from the end).
#include "kiln/ops/sequence/sequence_util.h"

namespace kiln {
namespace {
class SequenceAt : public Kernel {
 public:
  explicit SequenceAt(const ir::Node&) {}
  void prepare(OpContext&) override {}
  void compute(OpContext& ctx) override {
    const auto& items = ctx.input_value(0).items();
    ctx.set_output_tensor(0, items[size_t(sequence_position(ctx.input(1), int64_t(items.size()), false))]);
  }
};
const OpRegistration kSequenceAt{"SequenceAt", make_kernel<SequenceAt>};
}  // namespace
}  // namespace kiln
