// Range: start, start + delta, ... while below limit (above it for a negative delta); the
// count is max(ceil((limit - start) / delta), 0), computed in the inputs' own type.
#include <cmath>

#include "kiln/ops/tensor/tensor_copy.h"

namespace kiln {
namespace {
class Range : public Kernel {
 public:
  explicit Range(const ir::Node&) {}
  void prepare(OpContext&) override {}
  void compute(OpContext& ctx) override {
    const Tensor& s = ctx.input(0);
    const Tensor& l = ctx.input(1);
    const Tensor& d = ctx.input(2);
    for (int i = 0; i < 3; ++i) {
      const Tensor& t = ctx.input(i);
      if (t.dtype() != s.dtype())
        fail(ErrorCode::InvalidArgument, "input ", i, " is ", dtype_name(t.dtype()), " but start is ", dtype_name(s.dtype()));
      if (t.size() != 1) fail(ErrorCode::InvalidArgument, "input ", i, " must be a scalar, got shape ", shape_str(t.shape()));
    }
    dispatch(TypeList<float, double, int16_t, int32_t, int64_t>{}, s.dtype(), "Range", [&]<typename T>() {
      const T start = s.data<T>()[0], limit = l.data<T>()[0], delta = d.data<T>()[0];
      if (delta == T(0)) fail(ErrorCode::InvalidArgument, "delta must not be 0");
      int64_t n;
      if constexpr (std::is_floating_point_v<T>) {
        const double c = std::ceil((double(limit) - double(start)) / double(delta));
        if (!(c < 9.0e18)) fail(ErrorCode::InvalidArgument, "range from ", start, " to ", limit, " by ", delta, " is not finite");
        n = c > 0 ? int64_t(c) : 0;
      } else {
        const int64_t span = int64_t(limit) - int64_t(start), step = int64_t(delta);
        n = span / step + ((span % step != 0) && ((span > 0) == (step > 0)) ? 1 : 0);
        n = std::max<int64_t>(0, n);
      }
      T* out = ctx.allocate_output(0, s.dtype(), {n}).template data<T>();
      for (int64_t i = 0; i < n; ++i) out[i] = T(start + T(i) * delta);
    });
  }
};
const OpRegistration kRange{"Range", make_kernel<Range>};
}  // namespace
}  // namespace kiln
