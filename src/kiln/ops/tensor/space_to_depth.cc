// SpaceToDepth: moves b x b spatial blocks of an NCHW tensor into channels, as a permutation
// of the 6-D view [N, C, H/b, b, W/b, b].
#include "kiln/ops/tensor/tensor_copy.h"

namespace kiln {
namespace {
class SpaceToDepth : public Kernel {
 public:
  explicit SpaceToDepth(const ir::Node& node) : block_(node.attr_int("blocksize", 0)) {
    if (block_ <= 0) fail(ErrorCode::InvalidGraph, "blocksize must be positive, got ", block_);
  }
  void prepare(OpContext& ctx) override {
    const Tensor& x = ctx.input(0);
    if (x.rank() != 4) fail(ErrorCode::InvalidArgument, "input must be 4-D (NCHW), got shape ", shape_str(x.shape()));
    const int64_t n = x.dim(0), c = x.dim(1), h = x.dim(2), w = x.dim(3), b = block_;
    if (h % b != 0 || w % b != 0)
      fail(ErrorCode::InvalidArgument, "height and width of ", shape_str(x.shape()), " must be divisible by blocksize ", b);
    view_ = {n, c, h / b, b, w / b, b};
    ctx.set_output(0, x.dtype(), {n, c * b * b, h / b, w / b});
  }
  void compute(OpContext& ctx) override {
    const Tensor& x = ctx.input(0);
    Tensor& y = ctx.output(0);
    tensor_ops::dispatch_elements(x.dtype(), [&]<typename T>() {
      tensor_ops::permute(tensor_ops::elems<T>(x), view_, {0, 3, 5, 1, 2, 4}, tensor_ops::elems<T>(y));
    });
  }

 private:
  int64_t block_;
  Shape view_;
};
const OpRegistration kSpaceToDepth{"SpaceToDepth", make_kernel<SpaceToDepth>};
}  // namespace
}  // namespace kiln
