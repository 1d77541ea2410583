// PRelu: x for x >= 0, slope x below, where slope broadcasts to x's shape (one way: the output
// always has x's shape). Float types and, from opset 9, 32/64-bit integers.
#include "kiln/ops/common/elementwise.h"

namespace kiln {
namespace {

struct PReluFn {
  template <typename T>
  T operator()(T x, T slope) const {
    if constexpr (std::is_unsigned_v<T>) return x;
    else if constexpr (std::is_integral_v<T>) return x < 0 ? T(wrap_uint_t<T>(slope) * wrap_uint_t<T>(x)) : x;
    else return x < T(0) ? slope * x : x;
  }
};

using PReluTypes = TypeList<float, double, Float16, BFloat16, int32_t, int64_t, uint32_t, uint64_t>;

class PRelu : public Binary<PReluFn, PReluTypes> {
 public:
  using Binary::Binary;
  void prepare(OpContext& ctx) override {
    Binary::prepare(ctx);
    const Shape& x = ctx.input(0).shape();
    const Shape& slope = ctx.input(1).shape();
    if (broadcast_shapes({x, slope}) != x)
      fail(ErrorCode::InvalidArgument, "slope of shape ", shape_str(slope), " does not broadcast to X's shape ",
           shape_str(x));
  }
};

const OpRegistration kPRelu{"", "PRelu", 7, make_kernel<PRelu>};

}  // namespace
}  // namespace kiln
