// CastLike (opset 15): Cast to the element type of the second input (whose values are unused).
#include "kiln/ops/common/elementwise.h"
#include "kiln/ops/math/cast.h"

namespace kiln {
namespace {

class CastLike : public Kernel {
 public:
  explicit CastLike(const ir::Node&) {}
  void prepare(OpContext& ctx) override {
    const Tensor& x = ctx.input(0);
    const DType to = ctx.input(1).dtype();
    if (!cast_supported(x.dtype()) || !cast_supported(to))
      fail(ErrorCode::NotImplemented, "casting from ", dtype_name(x.dtype()), " to ", dtype_name(to),
           " is not supported");
    ctx.set_output(0, to, x.shape());
  }
  void compute(OpContext& ctx) override { cast_elements(ctx.input(0), ctx.output(0)); }
};

const OpRegistration kCastLike{"", "CastLike", 15, make_kernel<CastLike>};

}  // namespace
}  // namespace kiln
