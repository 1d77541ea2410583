// CumSum: running sums along `axis` (an input), inclusive or exclusive, forward or reversed.
// The sum walks the axis one slice at a time, adding whole contiguous inner rows, so the inner
// loop vectorizes; 16-bit floats accumulate in float.
#include "kiln/ops/tensor/scatter_reduce.h"

namespace kiln {
namespace {
class CumSum : public Kernel {
 public:
  explicit CumSum(const ir::Node& node)
      : exclusive_(node.attr_int("exclusive", 0) != 0), reverse_(node.attr_int("reverse", 0) != 0) {}
  void prepare(OpContext& ctx) override {
    const Tensor& x = ctx.input(0);
    const Tensor& a = ctx.input(1);
    if (a.size() != 1 || a.rank() > 1)
      fail(ErrorCode::InvalidArgument, "axis must be a scalar, got shape ", shape_str(a.shape()));
    axis_ = tensor_ops::normalize_axis(tensor_ops::read_indices(a, "axis")[0], x.rank());
    ctx.set_output(0, x.dtype(), x.shape());
  }
  void compute(OpContext& ctx) override {
    const Tensor& x = ctx.input(0);
    Tensor& y = ctx.output(0);
    if (y.size() == 0) return;
    int64_t outer = 1, inner = 1;
    const int64_t n = x.dim(axis_);
    for (int64_t d = 0; d < axis_; ++d) outer *= x.dim(d);
    for (int64_t d = axis_ + 1; d < x.rank(); ++d) inner *= x.dim(d);
    dispatch(TypeList<float, double, int32_t, int64_t, uint32_t, uint64_t, Float16, BFloat16>{}, x.dtype(), "CumSum",
             [&]<typename T>() {
      constexpr bool kHalf = std::is_same_v<T, Float16> || std::is_same_v<T, BFloat16>;
      using Acc = std::conditional_t<kHalf, float, T>;
      const T* src = x.data<T>();
      T* dst = y.data<T>();
      auto load = [](T v) -> Acc {
        if constexpr (kHalf) return tensor_ops::to_float_bits(v);
        else return v;
      };
      auto store = [](Acc v) -> T {
        if constexpr (kHalf) return tensor_ops::from_float_bits<T>(v);
        else return v;
      };
      // Work items: (outer index, block of inner columns), so both shapes of problem spread.
      const int64_t kBlock = 1024, blocks = (inner + kBlock - 1) / kBlock;
      parallel_for(outer * blocks, std::max<int64_t>(1, 16384 / (n * std::min(inner, kBlock))), [&](int64_t b, int64_t e) {
        std::vector<Acc> acc(static_cast<size_t>(std::min(inner, kBlock)));
        for (int64_t item = b; item < e; ++item) {
          const int64_t o = item / blocks, c0 = (item % blocks) * kBlock, c1 = std::min(inner, c0 + kBlock);
          const int64_t w = c1 - c0;
          std::fill_n(acc.begin(), w, Acc(0));
          Acc* pa = acc.data();
          for (int64_t step = 0; step < n; ++step) {
            const int64_t i = reverse_ ? n - 1 - step : step;
            const T* s = src + (o * n + i) * inner + c0;
            T* t = dst + (o * n + i) * inner + c0;
            if (exclusive_) {
#pragma omp simd
              for (int64_t c = 0; c < w; ++c) {
                t[c] = store(pa[c]);
                pa[c] = Acc(pa[c] + load(s[c]));
              }
            } else {
#pragma omp simd
              for (int64_t c = 0; c < w; ++c) {
                pa[c] = Acc(pa[c] + load(s[c]));
                t[c] = store(pa[c]);
              }
            }
          }
        }
      });
    });
  }
  std::vector<int> value_inputs() const override { return {1}; }

 private:
  bool exclusive_, reverse_;
  int64_t axis_ = 0;
};
const OpRegistration kCumSum{"CumSum", make_kernel<CumSum>};
}  // namespace
}  // namespace kiln
