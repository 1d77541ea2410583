// SplitToSequence: the input cut along `axis` into equal parts of the scalar `split`, parts of
// the listed lengths, or (no split) pieces of length 1, squeezed unless keepdims=0.
#include "kiln/exec/kernel.h"
#include "kiln/ops/tensor/tensor_copy.h"

namespace kiln {
namespace {
class SplitToSequence : public Kernel {
 public:
  explicit SplitToSequence(const ir::Node& node) : axis_(node.attr_int("axis", 0)), keepdims_(node.attr_int("keepdims", 1)) {}
  void prepare(OpContext&) override {}
  void compute(OpContext& ctx) override {
    const Tensor& x = ctx.input(0);
    const int64_t axis = tensor_ops::normalize_axis(axis_, x.rank());
    const int64_t n = x.dim(axis);
    std::vector<int64_t> lengths;
    bool squeeze = false;
    if (!ctx.has_input(1)) {
      lengths.assign(size_t(n), 1);
      squeeze = keepdims_ == 0;
    } else {
      const Tensor& split = ctx.input(1);
      std::vector<int64_t> s = tensor_ops::read_indices(split, "split");
      if (split.rank() == 0) {
        if (s[0] <= 0) fail(ErrorCode::InvalidArgument, "split must be positive, got ", s[0]);
        for (int64_t at = 0; at < n; at += s[0]) lengths.push_back(std::min(s[0], n - at));
      } else {
        int64_t total = 0;
        for (int64_t v : s) {
          if (v < 0) fail(ErrorCode::InvalidArgument, "split lengths must not be negative, got ", v);
          total += v;
        }
        if (total != n) fail(ErrorCode::InvalidArgument, "split lengths sum to ", total, ", the axis has ", n);
        lengths = s;
      }
    }
    const int64_t outer = shape_size(Shape(x.shape().begin(), x.shape().begin() + axis));
    const int64_t inner = shape_size(Shape(x.shape().begin() + axis + 1, x.shape().end()));
    std::vector<Tensor> items;
    int64_t at = 0;
    tensor_ops::dispatch_elements(x.dtype(), [&]<typename T>() {
      const T* src = tensor_ops::elems<T>(x);
      for (int64_t len : lengths) {
        Shape shape = x.shape();
        shape[size_t(axis)] = len;
        Tensor t(x.dtype(), shape);
        T* dst = tensor_ops::elems<T>(t);
        for (int64_t o = 0; o < outer; ++o) tensor_ops::copy_n(src + (o * n + at) * inner, len * inner, dst + o * len * inner);
        if (squeeze) shape.erase(shape.begin() + axis);
        items.push_back(t.reshaped(shape));
        at += len;
      }
    });
    ctx.set_output_value(0, Value::sequence(std::move(items), x.dtype()));
  }

 private:
  int64_t axis_, keepdims_;
};
const OpRegistration kSplitToSequence{"SplitToSequence", make_kernel<SplitToSequence>};
}  // namespace
}  // namespace kiln
