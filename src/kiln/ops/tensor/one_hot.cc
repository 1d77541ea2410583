// OneHot: a new axis of size depth in which position indices[...] holds values[1] and every
// other position values[0]. Negative indices count from depth's end; indices still outside
// [0, depth) give an all-off row, as the spec says.
#include <cmath>

#include "kiln/ops/tensor/tensor_copy.h"

namespace kiln {
namespace {
class OneHot : public Kernel {
 public:
  explicit OneHot(const ir::Node& node) : axis_(node.attr_int("axis", -1)) {}
  void prepare(OpContext& ctx) override {
    const Tensor& idx = ctx.input(0);
    const Tensor& depth = ctx.input(1);
    const Tensor& values = ctx.input(2);
    if (depth.size() != 1) fail(ErrorCode::InvalidArgument, "depth must hold one value, got shape ", shape_str(depth.shape()));
    const double dv = depth.scalar_as_double();
    if (!(dv >= 1) || dv > 9.0e18) fail(ErrorCode::InvalidArgument, "depth must be at least 1, got ", dv);
    depth_ = int64_t(dv);
    if (values.rank() != 1 || values.size() != 2)
      fail(ErrorCode::InvalidArgument, "values must be 1-D of [off, on], got shape ", shape_str(values.shape()));
    const int64_t r = idx.rank() + 1;
    axis_n_ = tensor_ops::normalize_axis(axis_, r);
    Shape out = idx.shape();
    out.insert(out.begin() + axis_n_, depth_);
    tensor_ops::check_shape_size(out, "output shape");
    ctx.set_output(0, values.dtype(), out);
  }
  void compute(OpContext& ctx) override {
    const Tensor& idx = ctx.input(0);
    const Tensor& values = ctx.input(2);
    Tensor& y = ctx.output(0);
    if (y.size() == 0) return;
    std::vector<int64_t> pos(static_cast<size_t>(idx.size()));
    if (idx.dtype() == DType::Float16 || idx.dtype() == DType::BFloat16) {
      const uint16_t* p = static_cast<const uint16_t*>(idx.raw());
      for (size_t i = 0; i < pos.size(); ++i)
        pos[i] = int64_t(idx.dtype() == DType::Float16 ? half_to_float(p[i]) : bfloat16_to_float(p[i]));
    } else {
      dispatch(NumericTypes{}, idx.dtype(), "OneHot indices", [&]<typename I>() {
        const I* p = idx.data<I>();
        for (size_t i = 0; i < pos.size(); ++i) {
          // Values no int64 can hold are out of range (all off), not undefined conversions.
          if constexpr (std::is_floating_point_v<I>)
            pos[i] = std::abs(double(p[i])) < 9.0e18 ? int64_t(p[i]) : -1 - depth_;
          else if constexpr (std::is_same_v<I, uint64_t>)
            pos[i] = p[i] > uint64_t(INT64_MAX) ? -1 - depth_ : int64_t(p[i]);
          else
            pos[i] = int64_t(p[i]);
        }
      });
    }
    int64_t outer = 1;
    for (int64_t d = 0; d < axis_n_; ++d) outer *= idx.dim(d);
    const int64_t inner = idx.size() / std::max<int64_t>(outer, 1);
    tensor_ops::dispatch_elements(values.dtype(), [&]<typename T>() {
      const T off = tensor_ops::elems<T>(values)[0], on = tensor_ops::elems<T>(values)[1];
      T* dst = tensor_ops::elems<T>(y);
      parallel_for(outer, std::max<int64_t>(1, 32768 / (depth_ * inner)), [&](int64_t b, int64_t e) {
        for (int64_t o = b; o < e; ++o) {
          T* block = dst + o * depth_ * inner;
          std::fill_n(block, depth_ * inner, off);
          for (int64_t i = 0; i < inner; ++i) {
            int64_t p = pos[size_t(o * inner + i)];
            if (p < 0) p += depth_;
            if (p >= 0 && p < depth_) block[p * inner + i] = on;
          }
        }
      });
    });
  }
  std::vector<int> value_inputs() const override { return {1}; }

 private:
  int64_t axis_;
  int64_t axis_n_ = 0, depth_ = 0;
};
const OpRegistration kOneHot{"OneHot", make_kernel<OneHot>};
}  // namespace
}  // namespace kiln
