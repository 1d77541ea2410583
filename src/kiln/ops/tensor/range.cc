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
      constexpr double kMax = double(int64_t(1) << 50);  // elements; anything larger cannot be allocated
      double count;
      if constexpr (std::is_floating_point_v<T>) {
        count = std::ceil((double(limit) - double(start)) / double(delta));
      } else {
        const __int128 span = __int128(limit) - __int128(start), step = __int128(delta);
        __int128 c = span / step + ((span % step != 0) && ((span > 0) == (step > 0)) ? 1 : 0);
        count = double(c);
      }
      if (!(count <= kMax))
        fail(ErrorCode::InvalidArgument, "range from ", double(start), " to ", double(limit), " by ", double(delta),
             " does not give a finite count of at most 2^50 elements");
      const int64_t n = count > 0 ? int64_t(count) : 0;
      T* out = ctx.allocate_output(0, s.dtype(), {n}).template data<T>();
      if constexpr (std::is_floating_point_v<T>) {
        for (int64_t i = 0; i < n; ++i) out[i] = T(start + T(i) * delta);
      } else {
        // Stepping never leaves [start, limit), so no intermediate value overflows.
        if (n > 0) out[0] = start;
        for (int64_t i = 1; i < n; ++i) out[i] = T(out[i - 1] + delta);
      }
    });
  }
};
const OpRegistration kRange{"Range", make_kernel<Range>};
}  // namespace
}  // namespace kiln
