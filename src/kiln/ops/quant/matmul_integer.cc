// MatMulInteger (opset 10): numpy matmul of 8-bit A and B after subtracting their zero points
// (A's: one, or one per row; B's: one, or one per column), accumulated in int32. A 2-D B with
// single zero points runs on oneDNN's int8 matmul, other layouts on exact int32 loops.
#include "kiln/ops/quant/quant.h"

namespace kiln {
namespace {

class MatMulInteger : public Kernel {
 public:
  explicit MatMulInteger(const KernelInit& init) : b_constant_(init.constant(1) != nullptr) {}

  void prepare(OpContext& ctx) override {
    const Tensor& a = ctx.input(0);
    const Tensor& b = ctx.input(1);
    dispatch(quant::QuantTypes{}, a.dtype(), "MatMulInteger A", []<typename T>() {});
    dispatch(quant::QuantTypes{}, b.dtype(), "MatMulInteger B", []<typename T>() {});
    geo_ = quant::matmul_geometry(a.shape(), b.shape());
    ctx.set_output(0, DType::Int32, geo_.out);
    // A 2-D B takes A's batch into its rows: one oneDNN product.
    const int64_t rows = geo_.m * int64_t(geo_.a_batch.size());
    use_dnnl_ = b.rank() == 2 && rows > 0 && geo_.k > 0 && geo_.n > 0 && dnnl_.init(rows, geo_.k, geo_.n, a.dtype());
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
    if (use_dnnl_ && za.size() == 1 && zb.size() == 1) {
      dispatch(quant::QuantTypes{}, b.dtype(), "B", [&]<typename Q>() {
        dnnl_.run(a.raw(), b.data<Q>(), za[0], zb[0], ctx.output(0).data<int32_t>(), b_constant_);
      });
      return;
    }
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
  quant::DnnlIntMatMul dnnl_;
  bool b_constant_;
  bool use_dnnl_ = false;
};

const OpRegistration kMatMulInteger{"", "MatMulInteger", 10, make_kernel<MatMulInteger>};

}  // namespace
}  // namespace kiln
