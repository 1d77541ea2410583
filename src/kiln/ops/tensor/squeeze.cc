// Squeeze: a view without the listed size-1 axes (all size-1 axes when none are listed).
// The axes are an attribute before opset 13 and an optional input from 13.
#include "kiln/ops/tensor/tensor_copy.h"

namespace kiln {
namespace {
class Squeeze : public Kernel {
 public:
  explicit Squeeze(const ir::Node& node) : from_input_(node.opset >= 13), attr_axes_(node.attr_ints("axes")) {}
  void prepare(OpContext& ctx) override {
    const Tensor& x = ctx.input(0);
    // No axes, or an empty list, squeezes every size-1 axis.
    std::vector<int64_t> axes;
    if (from_input_ && ctx.has_input(1)) axes = tensor_ops::read_indices(ctx.input(1), "axes");
    else if (!from_input_) axes = attr_axes_;
    std::vector<bool> drop(size_t(x.rank()), false);
    if (!axes.empty()) {
      for (int64_t a : tensor_ops::normalize_axes(axes, x.rank())) {
        if (x.dim(a) != 1)
          fail(ErrorCode::InvalidArgument, "cannot squeeze axis ", a, " of input ", shape_str(x.shape()),
               ": its size is ", x.dim(a), ", not 1");
        drop[size_t(a)] = true;
      }
    } else {
      for (int64_t d = 0; d < x.rank(); ++d) drop[size_t(d)] = x.dim(d) == 1;
    }
    shape_.clear();
    for (int64_t d = 0; d < x.rank(); ++d)
      if (!drop[size_t(d)]) shape_.push_back(x.dim(d));
  }
  void compute(OpContext& ctx) override { ctx.set_output_tensor(0, ctx.input(0).reshaped(shape_)); }
  std::vector<int> value_inputs() const override { return {1}; }

 private:
  bool from_input_;
  std::vector<int64_t> attr_axes_;
  Shape shape_;
};
const OpRegistration kSqueeze{"Squeeze", make_kernel<Squeeze>};
}  // namespace
}  // namespace kiln
