// GatherElements: out[p] = data[p with its axis coordinate replaced by indices[p]]; the
// output has the indices' shape, which may not exceed data's outside the axis.
#include "kiln/ops/tensor/tensor_copy.h"

namespace kiln {
namespace {
class GatherElements : public Kernel {
 public:
  explicit GatherElements(const ir::Node& node) : axis_(node.attr_int("axis", 0)) {}
  void prepare(OpContext& ctx) override {
    const Tensor& data = ctx.input(0);
    const Tensor& idx = ctx.input(1);
    if (data.rank() == 0) fail(ErrorCode::InvalidArgument, "data must have rank >= 1, got a scalar");
    if (idx.rank() != data.rank())
      fail(ErrorCode::InvalidArgument, "indices ", shape_str(idx.shape()), " must have the rank of data ",
           shape_str(data.shape()));
    axis_n_ = tensor_ops::normalize_axis(axis_, data.rank());
    for (int64_t d = 0; d < data.rank(); ++d)
      if (d != axis_n_ && idx.dim(d) > data.dim(d))
        fail(ErrorCode::InvalidArgument, "indices ", shape_str(idx.shape()), " exceed data ", shape_str(data.shape()),
             " in dimension ", d);
    ctx.set_output(0, data.dtype(), idx.shape());
  }
  void compute(OpContext& ctx) override {
    const Tensor& data = ctx.input(0);
    const Tensor& idx = ctx.input(1);
    Tensor& y = ctx.output(0);
    if (y.size() == 0) return;
    const Shape& shape = idx.shape();
    const size_t r = shape.size();
    const std::vector<int64_t> dstr = tensor_ops::contiguous_strides(data.shape());
    const int64_t inner = shape.back(), rows = y.size() / inner;
    const int64_t dim = data.dim(axis_n_), astride = dstr[size_t(axis_n_)];
    const int64_t step = size_t(axis_n_) == r - 1 ? 0 : 1;  // data stride along the row, outside the axis
    tensor_ops::IndexGuard guard;
    tensor_ops::dispatch_index(idx, "indices", [&]<typename I>() {
      const I* pi = idx.data<I>();
      tensor_ops::dispatch_elements(data.dtype(), [&]<typename T>() {
        const T* src = tensor_ops::elems<T>(data);
        T* dst = tensor_ops::elems<T>(y);
        parallel_for(rows, std::max<int64_t>(1, 16384 / inner), [&](int64_t b, int64_t e) {
          for (int64_t row = b; row < e; ++row) {
            int64_t base = 0, rem = row;
            for (size_t d = r - 1; d-- > 0;) {
              const int64_t c = rem % shape[d];
              rem /= shape[d];
              if (int64_t(d) != axis_n_) base += c * dstr[d];
            }
            const I* ri = pi + row * inner;
            T* ro = dst + row * inner;
            for (int64_t i = 0; i < inner; ++i) {
              int64_t k = int64_t(ri[i]);
              if (guard.wrap(k, dim)) ro[i] = src[base + i * step + k * astride];
            }
          }
        });
      });
    });
    guard.raise("index");
  }

 private:
  int64_t axis_;
  int64_t axis_n_ = 0;
};
const OpRegistration kGatherElements{"GatherElements", make_kernel<GatherElements>};
}  // namespace
}  // namespace kiln
