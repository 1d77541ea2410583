// Split: cuts the input along `axis` into the outputs. The sizes come from the split attribute
// (before opset 13) or input (from 13); without them the axis is cut evenly, and from opset 18
// the num_outputs attribute allows a smaller last part.
#include "kiln/ops/tensor/tensor_copy.h"

namespace kiln {
namespace {
class Split : public Kernel {
 public:
  explicit Split(const ir::Node& node)
      : axis_(node.attr_int("axis", 0)), opset_(int(node.opset)), attr_split_(node.attr_ints("split")),
        num_outputs_(node.attr_int("num_outputs", 0)) {
    has_attr_split_ = node.has_attr("split");
    if (node.has_attr("num_outputs") && num_outputs_ != int64_t(node.outputs.size()))
      fail(ErrorCode::InvalidGraph, "num_outputs is ", num_outputs_, " but the node has ", node.outputs.size(), " outputs");
  }
  void prepare(OpContext& ctx) override {
    const Tensor& x = ctx.input(0);
    axis_n_ = tensor_ops::normalize_axis(axis_, x.rank());
    const int64_t dim = x.dim(axis_n_), n = ctx.num_outputs();
    std::vector<int64_t> split;
    bool given = false;
    if (opset_ >= 18 && num_outputs_ > 0 && ctx.has_input(1))
      fail(ErrorCode::InvalidArgument, "give either the split input or the num_outputs attribute, not both");
    if (opset_ >= 13 && ctx.has_input(1)) {
      split = tensor_ops::read_indices(ctx.input(1), "split");
      given = true;
    } else if (opset_ < 13 && has_attr_split_) {
      split = attr_split_;
      given = true;
    }
    if (given) {
      if (int64_t(split.size()) != n)
        fail(ErrorCode::InvalidArgument, "split ", shape_str(split), " has ", split.size(), " entries for ", n, " outputs");
      int64_t sum = 0;
      for (int64_t s : split) {
        if (s < 0 || s > dim)
          fail(ErrorCode::InvalidArgument, "split ", shape_str(split), " has a size outside [0, ", dim, "]");
        sum += s;
      }
      if (sum != dim)
        fail(ErrorCode::InvalidArgument, "split ", shape_str(split), " sums to ", sum, " but axis ", axis_n_,
             " of input ", shape_str(x.shape()), " has size ", dim);
    } else if (opset_ >= 18 && num_outputs_ > 0) {
      const int64_t chunk = (dim + n - 1) / n;
      if (chunk * (n - 1) > dim)
        fail(ErrorCode::InvalidArgument, "cannot split size ", dim, " into ", n, " parts of ", chunk,
             " with a smaller last part");
      split.assign(size_t(n), chunk);
      split.back() = dim - chunk * (n - 1);
    } else {
      if (dim % n != 0)
        fail(ErrorCode::InvalidArgument, "axis ", axis_n_, " of input ", shape_str(x.shape()),
             " cannot be split evenly into ", n, " outputs");
      split.assign(size_t(n), dim / n);
    }
    split_ = split;
    for (int64_t i = 0; i < n; ++i) {
      Shape s = x.shape();
      s[size_t(axis_n_)] = split[size_t(i)];
      ctx.set_output(int(i), x.dtype(), s);
    }
  }
  void compute(OpContext& ctx) override {
    const Tensor& x = ctx.input(0);
    int64_t outer = 1, inner = 1;
    for (int64_t d = 0; d < axis_n_; ++d) outer *= x.dim(d);
    for (int64_t d = axis_n_ + 1; d < x.rank(); ++d) inner *= x.dim(d);
    const int64_t row = x.dim(axis_n_) * inner;
    tensor_ops::dispatch_elements(x.dtype(), [&]<typename T>() {
      int64_t offset = 0;
      for (int i = 0; i < ctx.num_outputs(); ++i) {
        const int64_t block = split_[size_t(i)] * inner;
        if (ctx.has_output(i))
          tensor_ops::strided_copy(tensor_ops::elems<T>(x) + offset, {outer, block}, {row, 1},
                                   tensor_ops::elems<T>(ctx.output(i)));
        offset += block;
      }
    });
  }
  std::vector<int> value_inputs() const override { return {1}; }

 private:
  int64_t axis_;
  int opset_;
  std::vector<int64_t> attr_split_;
  bool has_attr_split_ = false;
  int64_t num_outputs_;
  int64_t axis_n_ = 0;
  std::vector<int64_t> split_;
};
const OpRegistration kSplit{"Split", make_kernel<Split>};
}  // namespace
}  // namespace kiln
