// Compress: keeps the slices along `axis` (of the flattened input when there is no axis)
// whose condition entry is true. A condition shorter than the axis drops the rest; a longer
// one may only have false beyond it (numpy's rule).
#include "kiln/ops/tensor/tensor_copy.h"

namespace kiln {
namespace {
class Compress : public Kernel {
 public:
  explicit Compress(const ir::Node& node) : axis_(node.attr_int("axis", 0)), has_axis_(node.has_attr("axis")) {}
  void prepare(OpContext& ctx) override {
    const Tensor& x = ctx.input(0);
    const Tensor& c = ctx.input(1);
    if (c.dtype() != DType::Bool) fail(ErrorCode::InvalidArgument, "condition must be bool, got ", dtype_name(c.dtype()));
    if (c.rank() != 1) fail(ErrorCode::InvalidArgument, "condition must be 1-D, got shape ", shape_str(c.shape()));
    if (has_axis_) axis_n_ = tensor_ops::normalize_axis(axis_, x.rank());
  }
  void compute(OpContext& ctx) override {
    const Tensor& x = ctx.input(0);
    const Tensor& c = ctx.input(1);
    const int64_t dim = has_axis_ ? x.dim(axis_n_) : x.size();
    const bool* cond = c.data<bool>();
    std::vector<int64_t> keep;
    for (int64_t i = 0; i < c.size(); ++i) {
      if (!cond[i]) continue;
      if (i >= dim)
        fail(ErrorCode::InvalidArgument, "condition entry ", i, " is true but the axis has only ", dim, " elements");
      keep.push_back(i);
    }
    int64_t outer = 1, inner = 1;
    Shape out{int64_t(keep.size())};
    if (has_axis_) {
      for (int64_t d = 0; d < axis_n_; ++d) outer *= x.dim(d);
      for (int64_t d = axis_n_ + 1; d < x.rank(); ++d) inner *= x.dim(d);
      out = x.shape();
      out[size_t(axis_n_)] = int64_t(keep.size());
    }
    Tensor& y = ctx.allocate_output(0, x.dtype(), out);
    if (y.size() == 0) return;
    const int64_t k = int64_t(keep.size());
    tensor_ops::dispatch_elements(x.dtype(), [&]<typename T>() {
      const T* src = tensor_ops::elems<T>(x);
      T* dst = tensor_ops::elems<T>(y);
      parallel_for(outer * k, std::max<int64_t>(1, 32768 / inner), [&](int64_t b, int64_t e) {
        for (int64_t p = b; p < e; ++p)
          tensor_ops::copy_n(src + ((p / k) * dim + keep[size_t(p % k)]) * inner, inner, dst + p * inner);
      });
    });
  }

 private:
  int64_t axis_;
  bool has_axis_;
  int64_t axis_n_ = 0;
};
const OpRegistration kCompress{"Compress", make_kernel<Compress>};
}  // namespace
}  // namespace kiln
