// Shape: the input's dimensions as int64, optionally the slice [start, end) of them (opset 15;
// negative values count from the end, and both are clamped to [0, rank]).
#include "kiln/ops/tensor/tensor_copy.h"

namespace kiln {
namespace {
class ShapeOp : public Kernel {
 public:
  explicit ShapeOp(const ir::Node& node) : start_(node.attr_int("start", 0)), end_(node.attr_int("end", INT64_MAX)) {}
  void prepare(OpContext& ctx) override {
    const int64_t rank = ctx.input(0).rank();
    auto clamp = [&](int64_t v) { return std::clamp(v < 0 ? v + rank : v, int64_t(0), rank); };
    begin_ = clamp(start_);
    end_clamped_ = std::max(begin_, clamp(end_));
    ctx.set_output(0, DType::Int64, {end_clamped_ - begin_});
  }
  void compute(OpContext& ctx) override {
    const Shape& s = ctx.input(0).shape();
    int64_t* out = ctx.output(0).data<int64_t>();
    for (int64_t d = begin_; d < end_clamped_; ++d) out[d - begin_] = s[size_t(d)];
  }

 private:
  int64_t start_, end_;
  int64_t begin_ = 0, end_clamped_ = 0;
};
const OpRegistration kShape{"Shape", make_kernel<ShapeOp>};
}  // namespace
}  // namespace kiln
