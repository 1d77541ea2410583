// Expand: broadcasts the input against `shape` (numpy rules in both directions). The copy is
// a strided walk of the input with stride 0 along broadcast dimensions.
#include "kiln/ops/common/broadcast.h"
#include "kiln/ops/tensor/tensor_copy.h"

namespace kiln {
namespace {
class Expand : public Kernel {
 public:
  explicit Expand(const ir::Node&) {}
  void prepare(OpContext& ctx) override {
    const Tensor& x = ctx.input(0);
    const Tensor& s = ctx.input(1);
    if (s.dtype() != DType::Int64) fail(ErrorCode::InvalidArgument, "shape must be int64, got ", dtype_name(s.dtype()));
    if (s.rank() != 1) fail(ErrorCode::InvalidArgument, "shape must be 1-D, got shape ", shape_str(s.shape()));
    Shape target = s.to_int64s();
    for (int64_t d : target)
      if (d < 0) fail(ErrorCode::InvalidArgument, "shape ", shape_str(target), " has a negative dimension");
    Shape out = broadcast_shapes({x.shape(), target});
    tensor_ops::check_shape_size(out, "output shape");
    // The input's strides against the output: 0 where it is broadcast or absent.
    const std::vector<int64_t> in_strides = tensor_ops::contiguous_strides(x.shape());
    strides_.assign(out.size(), 0);
    const size_t lead = out.size() - size_t(x.rank());
    for (size_t d = 0; d < size_t(x.rank()); ++d)
      if (x.dim(int64_t(d)) != 1) strides_[lead + d] = in_strides[d];
    ctx.set_output(0, x.dtype(), out);
  }
  void compute(OpContext& ctx) override {
    const Tensor& x = ctx.input(0);
    Tensor& y = ctx.output(0);
    tensor_ops::dispatch_elements(x.dtype(), [&]<typename T>() {
      tensor_ops::strided_copy(tensor_ops::elems<T>(x), y.shape(), strides_, tensor_ops::elems<T>(y));
    });
  }
  std::vector<int> value_inputs() const override { return {1}; }

 private:
  std::vector<int64_t> strides_;
};
const OpRegistration kExpand{"Expand", make_kernel<Expand>};
}  // namespace
}  // namespace kiln
