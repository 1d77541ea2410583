// Gather: picks slices of `data` along `axis` by index. The output is
// data.shape[:axis] + indices.shape + data.shape[axis+1:]; each picked slice is one
// contiguous block of prod(data.shape[axis+1:]) elements.
#include "kiln/ops/tensor/tensor_copy.h"

namespace kiln {
namespace {
class Gather : public Kernel {
 public:
  explicit Gather(const ir::Node& node) : axis_(node.attr_int("axis", 0)) {}
  void prepare(OpContext& ctx) override {
    const Tensor& data = ctx.input(0);
    const Tensor& idx = ctx.input(1);
    if (data.rank() == 0) fail(ErrorCode::InvalidArgument, "data must have rank >= 1, got a scalar");
    if (idx.dtype() != DType::Int32 && idx.dtype() != DType::Int64)
      fail(ErrorCode::InvalidArgument, "indices must be int32 or int64, got ", dtype_name(idx.dtype()));
    axis_n_ = tensor_ops::normalize_axis(axis_, data.rank());
    Shape out(data.shape().begin(), data.shape().begin() + axis_n_);
    out.insert(out.end(), idx.shape().begin(), idx.shape().end());
    out.insert(out.end(), data.shape().begin() + axis_n_ + 1, data.shape().end());
    ctx.set_output(0, data.dtype(), out);
  }
  void compute(OpContext& ctx) override {
    const Tensor& data = ctx.input(0);
    Tensor& y = ctx.output(0);
    std::vector<int64_t> idx = ctx.input(1).to_int64s();
    const int64_t dim = data.dim(axis_n_);
    for (int64_t& i : idx) i = tensor_ops::wrap_index(i, dim, "index");
    if (y.size() == 0) return;
    int64_t outer = 1, inner = 1;
    for (int64_t d = 0; d < axis_n_; ++d) outer *= data.dim(d);
    for (int64_t d = axis_n_ + 1; d < data.rank(); ++d) inner *= data.dim(d);
    const int64_t n = int64_t(idx.size());
    tensor_ops::dispatch_elements(data.dtype(), [&]<typename T>() {
      const T* src = tensor_ops::elems<T>(data);
      T* dst = tensor_ops::elems<T>(y);
      if (inner == 1) {
        parallel_for(outer * n, 32768, [&](int64_t b, int64_t e) {
          for (int64_t p = b; p < e; ++p) dst[p] = src[(p / n) * dim + idx[size_t(p % n)]];
        });
        return;
      }
      if (outer * n == 1) return tensor_ops::parallel_copy(src + idx[0] * inner, inner, dst);
      parallel_for(outer * n, std::max<int64_t>(1, 32768 / inner), [&](int64_t b, int64_t e) {
        for (int64_t p = b; p < e; ++p)
          tensor_ops::copy_n(src + ((p / n) * dim + idx[size_t(p % n)]) * inner, inner, dst + p * inner);
      });
    });
  }

 private:
  int64_t axis_;
  int64_t axis_n_ = 0;
};
const OpRegistration kGather{"Gather", make_kernel<Gather>};
}  // namespace
}  // namespace kiln
