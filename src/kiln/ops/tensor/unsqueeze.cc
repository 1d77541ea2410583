// Unsqueeze: a view with size-1 axes inserted at the listed output positions. The axes are an
// attribute before opset 13 and an input from 13.
#include "kiln/ops/tensor/tensor_copy.h"

namespace kiln {
namespace {
class Unsqueeze : public Kernel {
 public:
  explicit Unsqueeze(const ir::Node& node) : from_input_(node.opset >= 13), attr_axes_(node.attr_ints("axes")) {
    if (!from_input_ && !node.has_attr("axes")) fail(ErrorCode::InvalidGraph, "Unsqueeze needs the axes attribute");
  }
  void prepare(OpContext& ctx) override {
    const Tensor& x = ctx.input(0);
    std::vector<int64_t> axes = from_input_ ? tensor_ops::read_indices(ctx.input(1), "axes") : attr_axes_;
    const int64_t out_rank = x.rank() + int64_t(axes.size());
    std::vector<bool> inserted(size_t(out_rank), false);
    for (int64_t a : tensor_ops::normalize_axes(axes, out_rank)) inserted[size_t(a)] = true;
    shape_.clear();
    int64_t next = 0;
    for (int64_t d = 0; d < out_rank; ++d) shape_.push_back(inserted[size_t(d)] ? 1 : x.dim(next++));
  }
  void compute(OpContext& ctx) override { ctx.set_output_tensor(0, ctx.input(0).reshaped(shape_)); }
  std::vector<int> value_inputs() const override { return {1}; }

 private:
  bool from_input_;
  std::vector<int64_t> attr_axes_;
  Shape shape_;
};
const OpRegistration kUnsqueeze{"Unsqueeze", make_kernel<Unsqueeze>};
}  // namespace
}  // namespace kiln
