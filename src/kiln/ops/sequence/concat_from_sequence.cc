// ConcatFromSequence: the sequence's tensors joined along `axis`, or stacked along a new one.
#include "kiln/ops/control/subgraph.h"
#include "kiln/ops/tensor/tensor_copy.h"

namespace kiln {
namespace {
class ConcatFromSequence : public Kernel {
 public:
  explicit ConcatFromSequence(const ir::Node& node) : axis_(node.attr_int("axis", 0)), new_axis_(node.attr_int("new_axis", 0)) {
    if (!node.has_attr("axis")) fail(ErrorCode::InvalidGraph, "the axis attribute is required");
  }
  void prepare(OpContext&) override {}
  void compute(OpContext& ctx) override {
    const auto& items = ctx.input_value(0).items();
    if (items.empty()) fail(ErrorCode::InvalidArgument, "cannot concatenate an empty sequence");
    if (new_axis_) return ctx.set_output_tensor(0, stack(items, axis_, "ConcatFromSequence"));
    const Tensor& first = items.front();
    const int64_t axis = tensor_ops::normalize_axis(axis_, first.rank());
    Shape shape = first.shape();
    shape[size_t(axis)] = 0;
    for (const Tensor& t : items) {
      bool same = t.rank() == first.rank() && t.dtype() == first.dtype();
      for (int64_t d = 0; same && d < t.rank(); ++d) same = d == axis || t.dim(d) == first.dim(d);
      if (!same)
        fail(ErrorCode::InvalidArgument, "tensors ", dtype_name(first.dtype()), shape_str(first.shape()), " and ",
             dtype_name(t.dtype()), shape_str(t.shape()), " cannot be joined along axis ", axis);
      shape[size_t(axis)] += t.dim(axis);
    }
    Tensor& out = ctx.allocate_output(0, first.dtype(), shape);
    const int64_t outer = shape_size(Shape(shape.begin(), shape.begin() + axis));
    const int64_t row = out.size() / std::max<int64_t>(outer, 1);
    tensor_ops::dispatch_elements(first.dtype(), [&]<typename T>() {
      T* dst = tensor_ops::elems<T>(out);
      int64_t at = 0;
      for (const Tensor& t : items) {
        const int64_t inner = t.size() / std::max<int64_t>(outer, 1);
        const T* src = tensor_ops::elems<T>(t);
        for (int64_t o = 0; o < outer; ++o) tensor_ops::copy_n(src + o * inner, inner, dst + o * row + at);
        at += inner;
      }
    });
  }

 private:
  int64_t axis_, new_axis_;
};
const OpRegistration kConcatFromSequence{"ConcatFromSequence", make_kernel<ConcatFromSequence>};
}  // namespace
}  // namespace kiln
