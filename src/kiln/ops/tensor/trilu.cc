// Trilu: keeps the upper (upper=1: j - i >= k) or lower (j - i <= k) triangle of each matrix
// in the last two dims and zeroes the rest (empty strings, false).
#include "kiln/ops/tensor/tensor_copy.h"

namespace kiln {
namespace {
class Trilu : public Kernel {
 public:
  explicit Trilu(const ir::Node& node) : upper_(node.attr_int("upper", 1) != 0) {}
  void prepare(OpContext& ctx) override {
    const Tensor& x = ctx.input(0);
    if (x.rank() < 2) fail(ErrorCode::InvalidArgument, "input must have rank >= 2, got shape ", shape_str(x.shape()));
    if (ctx.has_input(1)) {
      const Tensor& k = ctx.input(1);
      if (k.dtype() != DType::Int64 || k.size() != 1)
        fail(ErrorCode::InvalidArgument, "k must be an int64 scalar, got ", dtype_name(k.dtype()), " ", shape_str(k.shape()));
    }
    ctx.set_output(0, x.dtype(), x.shape());
  }
  void compute(OpContext& ctx) override {
    const Tensor& x = ctx.input(0);
    Tensor& y = ctx.output(0);
    if (y.size() == 0) return;
    const int64_t n = x.dim(x.rank() - 2), m = x.dim(x.rank() - 1), rows = x.size() / m;
    // Beyond +-(n + m) every k gives the same result; bounding it keeps i + k from overflowing.
    const int64_t k = std::clamp<int64_t>(ctx.has_input(1) ? ctx.input(1).data<int64_t>()[0] : 0, -(n + m), n + m);
    tensor_ops::dispatch_elements(x.dtype(), [&]<typename T>() {
      const T* src = tensor_ops::elems<T>(x);
      T* dst = tensor_ops::elems<T>(y);
      parallel_for(rows, std::max<int64_t>(1, 32768 / m), [&](int64_t b, int64_t e) {
        for (int64_t row = b; row < e; ++row) {
          const int64_t i = row % n;
          // Columns [0, split) are below the diagonal i + k (upper drops them, lower keeps them).
          const int64_t split = std::clamp<int64_t>(upper_ ? i + k : i + k + 1, 0, m);
          const T* s = src + row * m;
          T* o = dst + row * m;
          if (upper_) {
            std::fill_n(o, split, T{});
            tensor_ops::copy_n(s + split, m - split, o + split);
          } else {
            tensor_ops::copy_n(s, split, o);
            std::fill_n(o + split, m - split, T{});
          }
        }
      });
    });
  }

 private:
  bool upper_;
};
const OpRegistration kTrilu{"Trilu", make_kernel<Trilu>};
}  // namespace
}  // namespace kiln
