// MatMulInteger (opset 10): numpy matmul of 8-bit A and B after subtracting their zero points
// (A's: one, or one per row; B's: one, or one per column), accumulated in int32.
#include "kiln/ops/quant/quant.h"

namespace kiln {
namespace {

class MatMulInteger : public Kernel {
 public:
  explicit MatMulInteger(const ir::Node&) {}

  void prepare(OpContext& ctx) override {
    const Tensor& a = ctx.input(0);
    const Tensor& b = ctx.input(1);
    dispatch(quant::QuantTypes{}, a.dtype(), "MatMulInteger A", []<typename T>() {});
    dispatch(quant::QuantTypes{}, b.dtype(), "MatMulInteger B", []<typename T>() {});
    geo_ = quant::matmul_geometry(a.shape(), b.shape());
    ctx.set_output(0, DType::Int32, geo_.out);
  }

  void compute(OpContext& ctx) override {
    const Tensor& a = ctx.input(0);
    const Tensor& b = ctx.input(1);
    const std::vector<int32_t> za = quant::zero_points(ctx, 2, a.dtype(), "a_zero_point");
    const std::vector<int32_t> zb = quant::zero_points(ctx, 3, b.dtype(), "b_zero_point");
    if (za.size() != 1 && int64_t(za.size()) != geo_.m)
      fail(ErrorCode::InvalidArgument, "a_zero_point must have 1 or M=", geo_.m, " values, got ", za.size());
    if (zb.size() != 1 && int64_t(zb.size()) != geo_.n)
      fail(ErrorCode::InvalidArgument, "b_zero_point must have 1 or N=", geo_.n, " values, got ", zb.size());
    std::vector<int32_t> as, bs;
    dispatch(quant::QuantTypes{}, a.dtype(), "A", [&]<typename Q>() {
      as = quant::shifted(a.data<Q>(), a.size(), geo_.m, geo_.k, za, true);
    });
    dispatch(quant::QuantTypes{}, b.dtype(), "B", [&]<typename Q>() {
      bs = quant::shifted(b.data<Q>(), b.size(), geo_.k, geo_.n, zb, false);
    });
    quant::int_matmul(geo_, as.data(), bs.data(), ctx.output(0).data<int32_t>());
  }

 private:
  quant::MatMulGeometry geo_;
};

const OpRegistration kMatMulInteger{"", "MatMulInteger", 10, make_kernel<MatMulInteger>};

}  // namespace
}  // namespace kiln
