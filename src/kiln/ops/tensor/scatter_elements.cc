// ScatterElements: a copy of `data` where, for each position p of `indices`, the element at p
// with its axis coordinate replaced by indices[p] takes (or combines with) updates[p].
#include "kiln/ops/tensor/scatter_reduce.h"

namespace kiln {
namespace {
class ScatterElements : public Kernel {
 public:
  explicit ScatterElements(const ir::Node& node)
      : axis_(node.attr_int("axis", 0)), reduction_(tensor_ops::parse_reduction(node)) {}
  void prepare(OpContext& ctx) override {
    const Tensor& data = ctx.input(0);
    const Tensor& idx = ctx.input(1);
    const Tensor& upd = ctx.input(2);
    if (upd.dtype() != data.dtype())
      fail(ErrorCode::InvalidArgument, "updates are ", dtype_name(upd.dtype()), " but data is ", dtype_name(data.dtype()));
    if (data.rank() < 1) fail(ErrorCode::InvalidArgument, "data must have rank >= 1, got a scalar");
    if (idx.rank() != data.rank())
      fail(ErrorCode::InvalidArgument, "indices ", shape_str(idx.shape()), " must have the rank of data ",
           shape_str(data.shape()));
    if (upd.shape() != idx.shape())
      fail(ErrorCode::InvalidArgument, "updates ", shape_str(upd.shape()), " must have the shape of indices ",
           shape_str(idx.shape()));
    axis_n_ = tensor_ops::normalize_axis(axis_, data.rank());
    for (int64_t d = 0; d < data.rank(); ++d)
      if (d != axis_n_ && idx.dim(d) > data.dim(d))
        fail(ErrorCode::InvalidArgument, "indices ", shape_str(idx.shape()), " exceed data ", shape_str(data.shape()),
             " in dimension ", d);
    ctx.set_output(0, data.dtype(), data.shape());
  }
  void compute(OpContext& ctx) override {
    const Tensor& data = ctx.input(0);
    const Tensor& idx = ctx.input(1);
    const Tensor& upd = ctx.input(2);
    Tensor& y = ctx.output(0);
    const std::vector<int64_t> pos = tensor_ops::read_indices(idx, "indices");
    const Shape& shape = idx.shape();
    const size_t r = shape.size();
    const std::vector<int64_t> dstr = tensor_ops::contiguous_strides(data.shape());
    const int64_t dim = data.dim(axis_n_), astride = dstr[size_t(axis_n_)];
    // Destination offsets first, so a bad index fails before anything is written.
    std::vector<int64_t> offsets(pos.size());
    std::vector<int64_t> coord(r, 0);
    int64_t base = 0;  // data offset of coord with the axis coordinate left out
    for (size_t p = 0; p < pos.size(); ++p) {
      offsets[p] = base + tensor_ops::wrap_index(pos[p], dim, "index") * astride;
      for (size_t d = r; d-- > 0;) {
        const int64_t step = int64_t(d) == axis_n_ ? 0 : dstr[d];
        base += step;
        if (++coord[d] < shape[d]) break;
        base -= step * shape[d];
        coord[d] = 0;
      }
    }
    tensor_ops::dispatch_scatter(reduction_, data.dtype(), [&]<typename T, bool kReplace>() {
      T* dst = tensor_ops::elems<T>(y);
      const T* src = tensor_ops::elems<T>(upd);
      tensor_ops::parallel_copy(tensor_ops::elems<T>(data), data.size(), dst);
      if constexpr (kReplace) {
        for (size_t p = 0; p < offsets.size(); ++p) dst[offsets[p]] = src[p];
      } else {
        for (size_t p = 0; p < offsets.size(); ++p) tensor_ops::combine(reduction_, dst[offsets[p]], src[p]);
      }
    });
  }

 private:
  int64_t axis_;
  tensor_ops::Reduction reduction_;
  int64_t axis_n_ = 0;
};
const OpRegistration kScatterElements{"ScatterElements", make_kernel<ScatterElements>};
// Scatter (opsets 9-10) is ScatterElements under its deprecated name.
const OpRegistration kScatter{"", "Scatter", 9, make_kernel<ScatterElements>};
}  // namespace
}  // namespace kiln
