// EyeLike: a 2-D tensor of the input's shape with ones on diagonal k and zeros elsewhere; its
// type is the dtype attribute, or the input's.
#include "kiln/ops/tensor/tensor_copy.h"

namespace kiln {
namespace {
class EyeLike : public Kernel {
 public:
  explicit EyeLike(const ir::Node& node) : k_(node.attr_int("k", 0)) {
    if (node.has_attr("dtype")) {
      const int64_t code = node.attr_int("dtype", 0);
      if (!dtype_valid(int32_t(code))) fail(ErrorCode::InvalidGraph, "dtype ", code, " is not an element type");
      dtype_ = DType(code);
    }
  }
  void prepare(OpContext& ctx) override {
    const Tensor& x = ctx.input(0);
    if (x.rank() != 2) fail(ErrorCode::InvalidArgument, "input must be 2-D, got shape ", shape_str(x.shape()));
    ctx.set_output(0, dtype_ == DType::Undefined ? x.dtype() : dtype_, x.shape());
  }
  void compute(OpContext& ctx) override {
    Tensor& y = ctx.output(0);
    const int64_t rows = y.dim(0), cols = y.dim(1);
    const int64_t k = std::clamp<int64_t>(k_, -rows, cols);  // beyond these, no diagonal element is left
    dispatch(TypeList<float, double, int32_t, int64_t, int8_t, int16_t, uint8_t, uint16_t, uint32_t, uint64_t, bool,
                      Float16, BFloat16>{},
             y.dtype(), "EyeLike", [&]<typename T>() {
      T one{}, zero{};
      if constexpr (std::is_same_v<T, Float16>) one.bits = float_to_half(1.0f);
      else if constexpr (std::is_same_v<T, BFloat16>) one.bits = float_to_bfloat16(1.0f);
      else one = T(1), zero = T(0);
      T* p = y.data<T>();
      std::fill_n(p, y.size(), zero);
      for (int64_t i = std::max<int64_t>(0, -k); i < rows && i + k < cols; ++i) p[i * cols + i + k] = one;
    });
  }

 private:
  int64_t k_;
  DType dtype_ = DType::Undefined;
};
const OpRegistration kEyeLike{"EyeLike", make_kernel<EyeLike>};
}  // namespace
}  // namespace kiln
