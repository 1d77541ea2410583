// DepthToSpace: moves channel blocks into b x b spatial blocks of an NCHW tensor. Both modes
// are one permutation of a 6-D view: DCR reads channels as [b, b, C/b^2], CRD as [C/b^2, b, b].
#include "kiln/ops/tensor/tensor_copy.h"

namespace kiln {
namespace {
class DepthToSpace : public Kernel {
 public:
  explicit DepthToSpace(const ir::Node& node) : block_(node.attr_int("blocksize", 0)) {
    std::string mode = node.attr_string("mode", "DCR");
    if (mode != "DCR" && mode != "CRD")
      fail(ErrorCode::InvalidGraph, "mode must be DCR or CRD, got '", mode, "'");
    crd_ = mode == "CRD";
    if (block_ <= 0) fail(ErrorCode::InvalidGraph, "blocksize must be positive, got ", block_);
  }
  void prepare(OpContext& ctx) override {
    const Tensor& x = ctx.input(0);
    if (x.rank() != 4) fail(ErrorCode::InvalidArgument, "input must be 4-D (NCHW), got shape ", shape_str(x.shape()));
    const int64_t n = x.dim(0), c = x.dim(1), h = x.dim(2), w = x.dim(3), b = block_;
    if (c % (b * b) != 0)
      fail(ErrorCode::InvalidArgument, "channels (", c, ") must be divisible by blocksize^2 (", b * b, ")");
    const int64_t cb = c / (b * b);
    if (crd_) {
      view_ = {n, cb, b, b, h, w};
      perm_ = {0, 1, 4, 2, 5, 3};
    } else {
      view_ = {n, b, b, cb, h, w};
      perm_ = {0, 3, 4, 1, 5, 2};
    }
    ctx.set_output(0, x.dtype(), {n, cb, h * b, w * b});
  }
  void compute(OpContext& ctx) override {
    const Tensor& x = ctx.input(0);
    Tensor& y = ctx.output(0);
    tensor_ops::dispatch_elements(x.dtype(), [&]<typename T>() {
      tensor_ops::permute(tensor_ops::elems<T>(x), view_, perm_, tensor_ops::elems<T>(y));
    });
  }

 private:
  int64_t block_;
  bool crd_ = false;
  Shape view_;
  std::vector<int64_t> perm_;
};
const OpRegistration kDepthToSpace{"DepthToSpace", make_kernel<DepthToSpace>};
}  // namespace
}  // namespace kiln
