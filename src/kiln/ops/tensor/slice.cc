// Slice: starts/ends/axes/steps per axis (attributes before opset 10, inputs from 10).
// Negative starts and ends count from the end; both are clamped per the spec ([0, dim] for
// positive steps, [0, dim-1] and [-1, dim-1] for negative ones), so out-of-range values are
// never an error. The copy is one strided walk of the input.
#include "kiln/ops/tensor/tensor_copy.h"

namespace kiln {
namespace {
class Slice : public Kernel {
 public:
  explicit Slice(const ir::Node& node) : from_attr_(node.opset < 10) {
    if (from_attr_) {
      if (!node.has_attr("starts") || !node.has_attr("ends"))
        fail(ErrorCode::InvalidGraph, "Slice before opset 10 needs the starts and ends attributes");
      starts_ = node.attr_ints("starts");
      ends_ = node.attr_ints("ends");
      axes_ = node.attr_ints("axes");
      has_axes_ = node.has_attr("axes");
    }
  }
  void prepare(OpContext& ctx) override {
    const Tensor& x = ctx.input(0);
    std::vector<int64_t> starts = starts_, ends = ends_, axes = axes_, steps;
    bool has_axes = has_axes_;
    if (!from_attr_) {
      starts = tensor_ops::read_indices(ctx.input(1), "starts");
      ends = tensor_ops::read_indices(ctx.input(2), "ends");
      has_axes = ctx.has_input(3);
      if (has_axes) axes = tensor_ops::read_indices(ctx.input(3), "axes");
      if (ctx.has_input(4)) steps = tensor_ops::read_indices(ctx.input(4), "steps");
    }
    const size_t n = starts.size();
    if (ends.size() != n)
      fail(ErrorCode::InvalidArgument, "starts has ", n, " entries but ends has ", ends.size());
    if (!has_axes) {
      axes.clear();
      for (size_t i = 0; i < n; ++i) axes.push_back(int64_t(i));
    }
    if (axes.size() != n) fail(ErrorCode::InvalidArgument, "starts has ", n, " entries but axes has ", axes.size());
    if (steps.empty()) steps.assign(n, 1);
    if (steps.size() != n) fail(ErrorCode::InvalidArgument, "starts has ", n, " entries but steps has ", steps.size());
    axes = tensor_ops::normalize_axes(axes, x.rank());

    const std::vector<int64_t> in_strides = tensor_ops::contiguous_strides(x.shape());
    Shape out = x.shape();
    strides_ = in_strides;
    offset_ = 0;
    for (size_t i = 0; i < n; ++i) {
      const int64_t a = axes[i], dim = x.dim(a), step = steps[i];
      if (step == 0) fail(ErrorCode::InvalidArgument, "steps[", i, "] is 0");
      int64_t start = starts[i], end = ends[i], count = 0;
      // A step beyond the dim takes at most one element either way; bounding it keeps the
      // arithmetic below from overflowing.
      const int64_t step_b = std::clamp<int64_t>(step, -std::max<int64_t>(dim, 1), std::max<int64_t>(dim, 1));
      if (start < 0) start += dim;
      if (end < 0) end += dim;
      if (dim == 0) {
        start = 0;
      } else if (step > 0) {
        start = std::clamp<int64_t>(start, 0, dim);
        end = std::clamp<int64_t>(end, 0, dim);
        if (end > start) count = (end - start - 1) / step_b + 1;
      } else {
        start = std::clamp<int64_t>(start, 0, dim - 1);
        end = std::clamp<int64_t>(end, -1, dim - 1);
        if (start > end) count = (start - end - 1) / -step_b + 1;
      }
      out[size_t(a)] = count;
      strides_[size_t(a)] = in_strides[size_t(a)] * step_b;
      offset_ += start * in_strides[size_t(a)];
    }
    ctx.set_output(0, x.dtype(), out);
  }
  void compute(OpContext& ctx) override {
    const Tensor& x = ctx.input(0);
    Tensor& y = ctx.output(0);
    if (y.size() == 0) return;
    tensor_ops::dispatch_elements(x.dtype(), [&]<typename T>() {
      tensor_ops::strided_copy(tensor_ops::elems<T>(x) + offset_, y.shape(), strides_, tensor_ops::elems<T>(y));
    });
  }
  std::vector<int> value_inputs() const override { return {1, 2, 3, 4}; }

 private:
  bool from_attr_;
  std::vector<int64_t> starts_, ends_, axes_;
  bool has_axes_ = false;
  std::vector<int64_t> strides_;
  int64_t offset_ = 0;
};
const OpRegistration kSlice{"Slice", make_kernel<Slice>};
}  // namespace
}  // namespace kiln
