// QLinearMatMul (opset 10): y = saturate(round(sum((a - a_zp)(b - b_zp)) * a_scale * b_scale /
// y_scale) + y_zp). A's scale and zero point are per tensor or per row, B's per tensor or per
// column, Y's per tensor; the sums are exact int32 (oneDNN's int8 matmul for a 2-D B with single
// zero points), the rescale is in double.
#include "kiln/ops/quant/quant.h"

namespace kiln {
namespace {

class QLinearMatMul : public Kernel {
 public:
  explicit QLinearMatMul(const KernelInit& init) : b_constant_(init.constant(3) != nullptr) {}

  void prepare(OpContext& ctx) override {
    const Tensor& a = ctx.input(0);
    const Tensor& b = ctx.input(3);
    dispatch(quant::QuantTypes{}, a.dtype(), "QLinearMatMul a", []<typename T>() {});
    dispatch(quant::QuantTypes{}, b.dtype(), "QLinearMatMul b", []<typename T>() {});
    out_type_ = ctx.input(7).dtype();
    dispatch(quant::QuantTypes{}, out_type_, "QLinearMatMul y_zero_point", []<typename T>() {});
    geo_ = quant::matmul_geometry(a.shape(), b.shape());
    ctx.set_output(0, out_type_, geo_.out);
    const int64_t rows = geo_.m * int64_t(geo_.a_batch.size());
    use_dnnl_ = b.rank() == 2 && rows > 0 && geo_.k > 0 && geo_.n > 0 && dnnl_.init(rows, geo_.k, geo_.n, a.dtype());
  }

  void compute(OpContext& ctx) override {
    const Tensor& a = ctx.input(0);
    const Tensor& b = ctx.input(3);
    const std::vector<float> sa = quant::float_values(ctx.input(1), "a_scale");
    const std::vector<int32_t> za = quant::zero_points(ctx, 2, a.dtype(), "a_zero_point");
    const std::vector<float> sb = quant::float_values(ctx.input(4), "b_scale");
    const std::vector<int32_t> zb = quant::zero_points(ctx, 5, b.dtype(), "b_zero_point");
    const std::vector<float> sy = quant::float_values(ctx.input(6), "y_scale");
    const std::vector<int32_t> zy = quant::zero_points(ctx, 7, out_type_, "y_zero_point");
    const int64_t m = geo_.m, n = geo_.n;
    auto check = [](size_t got, int64_t per, const char* what, const char* per_what) {
      if (got != 1 && int64_t(got) != per)
        fail(ErrorCode::InvalidArgument, what, " must have 1 or ", per_what, "=", per, " values, got ", got);
    };
    check(sa.size(), m, "a_scale", "M"), check(za.size(), m, "a_zero_point", "M");
    check(sb.size(), n, "b_scale", "N"), check(zb.size(), n, "b_zero_point", "N");
    check(sy.size(), 1, "y_scale", "one"), check(zy.size(), 1, "y_zero_point", "one");
    const int64_t total = shape_size(geo_.out);
    std::vector<int32_t> acc(static_cast<size_t>(total));
    if (use_dnnl_ && za.size() == 1 && zb.size() == 1) {
      dispatch(quant::QuantTypes{}, b.dtype(), "b", [&]<typename Q>() {
        dnnl_.run(a.raw(), b.data<Q>(), za[0], zb[0], acc.data(), b_constant_);
      });
    } else {
      std::vector<int32_t> as, bs;
      dispatch(quant::QuantTypes{}, a.dtype(), "a", [&]<typename Q>() {
        as = quant::shifted(a.data<Q>(), a.size(), m, geo_.k, za, true);
      });
      dispatch(quant::QuantTypes{}, b.dtype(), "b", [&]<typename Q>() {
        bs = quant::shifted(b.data<Q>(), b.size(), geo_.k, n, zb, false);
      });
      quant::int_matmul(geo_, as.data(), bs.data(), acc.data());
    }
    // The rescale of row r, column c: a_scale[r] * b_scale[c] / y_scale.
    std::vector<double> col_mult(static_cast<size_t>(n));
    for (int64_t c = 0; c < n; ++c) col_mult[size_t(c)] = double(sb[sb.size() == 1 ? 0 : size_t(c)]) / double(sy[0]);
    const double zp = double(zy[0]);
    dispatch(quant::QuantTypes{}, out_type_, "y", [&]<typename Q>() {
      Q* y = ctx.output(0).data<Q>();
      const int64_t rows = n ? total / n : 0;
      parallel_for(rows, std::max<int64_t>(1, 16384 / std::max<int64_t>(n, 1)), [&](int64_t s, int64_t e) {
        for (int64_t r = s; r < e; ++r) {
          const double ra = double(sa[sa.size() == 1 ? 0 : size_t(r % m)]);
          const int32_t* a = acc.data() + r * n;
          Q* out = y + r * n;
#pragma omp simd
          for (int64_t c = 0; c < n; ++c) out[c] = quant::quantize_value<Q>(double(a[c]) * (ra * col_mult[size_t(c)]), zp);
        }
      });
    });
  }

 private:
  DType out_type_ = DType::UInt8;
  quant::MatMulGeometry geo_;
  quant::DnnlIntMatMul dnnl_;
  bool b_constant_;
  bool use_dnnl_ = false;
};

const OpRegistration kQLinearMatMul{"", "QLinearMatMul", 10, make_kernel<QLinearMatMul>};

}  // namespace
}  // namespace kiln
