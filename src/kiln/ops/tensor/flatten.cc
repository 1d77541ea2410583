// Flatten: a 2-D view [prod(dims before axis), prod(dims from axis)] of the input's buffer.
#include "kiln/ops/tensor/tensor_copy.h"

namespace kiln {
namespace {
class Flatten : public Kernel {
 public:
  explicit Flatten(const ir::Node& node) : axis_(node.attr_int("axis", 1)) {}
  void prepare(OpContext& ctx) override {
    const Shape& s = ctx.input(0).shape();
    const int64_t rank = int64_t(s.size());
    if (axis_ < -rank || axis_ > rank)
      fail(ErrorCode::InvalidArgument, "axis ", axis_, " is out of range for rank ", rank, ": expected [", -rank,
           ", ", rank, "]");
    const int64_t axis = axis_ < 0 ? axis_ + rank : axis_;
    int64_t outer = 1;
    for (int64_t d = 0; d < axis; ++d) outer *= s[size_t(d)];
    shape_ = {outer, shape_size(s) / std::max<int64_t>(outer, 1)};
    if (outer == 0) {  // the inner product cannot be recovered by division
      shape_[1] = 1;
      for (int64_t d = axis; d < rank; ++d) shape_[1] *= s[size_t(d)];
    }
  }
  void compute(OpContext& ctx) override { ctx.set_output_tensor(0, ctx.input(0).reshaped(shape_)); }

 private:
  int64_t axis_;
  Shape shape_;
};
const OpRegistration kFlatten{"Flatten", make_kernel<Flatten>};
}  // namespace
}  // namespace kiln
