// Concat: joins the inputs along `axis`. Each output row (the dims before the axis) is the
// inputs' rows laid end to end, so the copy is one contiguous block per input per row.
#include "kiln/ops/tensor/tensor_copy.h"

namespace kiln {
namespace {
class Concat : public Kernel {
 public:
  explicit Concat(const ir::Node& node) : axis_(node.attr_int("axis", 1)), nhwc_(node.attr_int("kiln_nhwc", 0) != 0) {
    if (node.opset >= 4 && !node.has_attr("axis")) fail(ErrorCode::InvalidGraph, "Concat needs the axis attribute");
  }
  void prepare(OpContext& ctx) override {
    const Tensor& first = ctx.input(0);
    if (first.rank() == 0) fail(ErrorCode::InvalidArgument, "Concat inputs must have rank >= 1, input 0 is a scalar");
    axis_n_ = tensor_ops::normalize_axis(axis_, first.rank());
    Shape out = first.shape();
    out[size_t(axis_n_)] = 0;
    for (int i = 0; i < ctx.num_inputs(); ++i) {
      const Tensor& t = ctx.input(i);
      if (t.dtype() != first.dtype())
        fail(ErrorCode::InvalidArgument, "input ", i, " is ", dtype_name(t.dtype()), " but input 0 is ",
             dtype_name(first.dtype()));
      bool ok = t.rank() == first.rank();
      for (int64_t d = 0; ok && d < t.rank(); ++d) ok = d == axis_n_ || t.dim(d) == first.dim(d);
      if (!ok)
        fail(ErrorCode::InvalidArgument, "input ", i, " has shape ", shape_str(t.shape()), ", which does not match input 0 ",
             shape_str(first.shape()), " outside axis ", axis_n_);
      out[size_t(axis_n_)] += t.dim(axis_n_);
    }
    ctx.set_output(0, first.dtype(), out);
    if (nhwc_ && (out.size() != 4 || axis_n_ != 1))
      fail(ErrorCode::InvalidGraph, "kiln_nhwc needs 4-D inputs joined on axis 1, got axis ", axis_, " of ",
           shape_str(out));
  }
  void compute(OpContext& ctx) override {
    Tensor& y = ctx.output(0);
    if (y.size() == 0) return;
    const int n = ctx.num_inputs();
    // Channels-last storage joins the channels of each pixel: the stored axis is the last one.
    int64_t outer = 1, inner = 1;
    for (int64_t d = 0; d < axis_n_; ++d) outer *= y.dim(d);
    for (int64_t d = axis_n_ + 1; d < y.rank(); ++d) (nhwc_ ? outer : inner) *= y.dim(d);
    const int64_t row = y.dim(axis_n_) * inner;
    std::vector<int64_t> block(static_cast<size_t>(n)), offset(static_cast<size_t>(n));
    int64_t off = 0;
    for (int i = 0; i < n; ++i) {
      block[size_t(i)] = ctx.input(i).dim(axis_n_) * inner;
      offset[size_t(i)] = off;
      off += block[size_t(i)];
    }
    tensor_ops::dispatch_elements(y.dtype(), [&]<typename T>() {
      T* dst = tensor_ops::elems<T>(y);
      if (outer == 1) {
        for (int i = 0; i < n; ++i)
          tensor_ops::parallel_copy(tensor_ops::elems<T>(ctx.input(i)), block[size_t(i)], dst + offset[size_t(i)]);
        return;
      }
      parallel_for(outer, std::max<int64_t>(1, 32768 / row), [&](int64_t b, int64_t e) {
        for (int64_t r = b; r < e; ++r)
          for (int i = 0; i < n; ++i)
            tensor_ops::copy_n(tensor_ops::elems<T>(ctx.input(i)) + r * block[size_t(i)], block[size_t(i)],
                               dst + r * row + offset[size_t(i)]);
      });
    });
  }

 private:
  int64_t axis_;
  bool nhwc_;  // kiln_nhwc (layout pass): 4-D inputs and output stored channels-last
  int64_t axis_n_ = 0;
};
const OpRegistration kConcat{"Concat", make_kernel<Concat>};
}  // namespace
}  // namespace kiln
