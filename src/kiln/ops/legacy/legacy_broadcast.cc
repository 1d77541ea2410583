// kiln::LegacyBroadcast (made by the upgrade_legacy_ops pass): B, viewed so that numpy
// broadcasting against A aligns B's dimensions with A's starting at `axis`, the old
// (opset < 7) rule of `broadcast=1, axis=k` and of PRelu's per-channel slope. Trailing size-1
// dimensions are appended; a B that already reaches A's last dimension is passed through.
#include "kiln/exec/kernel.h"

namespace kiln {
namespace {

class LegacyBroadcast : public Kernel {
 public:
  explicit LegacyBroadcast(const ir::Node& node) : axis_(node.attr_int("axis", 0)) {}

  void prepare(OpContext& ctx) override {
    const Tensor& a = ctx.input(0);
    const Tensor& b = ctx.input(1);
    int64_t axis = axis_;
    if (axis < -a.rank() || axis > a.rank())
      fail(ErrorCode::InvalidArgument, "axis ", axis_, " is out of range for A of rank ", a.rank());
    if (axis < 0) axis += a.rank();
    shape_ = b.shape();
    for (int64_t d = axis + b.rank(); d < a.rank(); ++d) shape_.push_back(1);
  }

  void compute(OpContext& ctx) override { ctx.set_output_tensor(0, ctx.input(1).reshaped(shape_)); }

 private:
  int64_t axis_;
  Shape shape_;
};

const OpRegistration kLegacyBroadcast{"kiln", "LegacyBroadcast", 1, make_kernel<LegacyBroadcast>};

}  // namespace
}  // namespace kiln
