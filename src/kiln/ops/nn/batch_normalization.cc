// BatchNormalization in inference mode (opsets 1-15): Y = (X - mean) / sqrt(var + epsilon) *
// scale + B, folded into one multiply-add per element. Per channel, or per activation with
// `spatial`=0 (opsets before 9). Training (training_mode=1 or the running statistics
// outputs) is refused: Kiln runs inference.
#include <cmath>

#include "kiln/core/parallel.h"
#include "kiln/exec/kernel.h"

namespace kiln {
namespace {

class BatchNormalization : public Kernel {
 public:
  explicit BatchNormalization(const ir::Node& node)
      : epsilon_(node.attr_float("epsilon", 1e-5f)), spatial_(node.attr_int("spatial", 1) != 0) {
    if (node.attr_int("training_mode", 0) != 0)
      fail(ErrorCode::NotImplemented, "training_mode=1 is not supported: Kiln runs inference only (training_mode=0)");
    for (size_t i = 1; i < node.outputs.size(); ++i)
      if (!node.outputs[i].empty())
        fail(ErrorCode::NotImplemented, "output ", i, " ('", node.outputs[i],
             "') exists only in training mode, which Kiln does not run; only Y is supported");
  }

  void prepare(OpContext& ctx) override {
    const Tensor& x = ctx.input(0);
    if (x.dtype() != DType::Float32 && x.dtype() != DType::Float64)
      fail(ErrorCode::NotImplemented, "element type ", dtype_name(x.dtype()), " is not supported (float and double are)");
    if (x.rank() < 2) fail(ErrorCode::InvalidArgument, "X must be [N, C, ...], got ", shape_str(x.shape()));
    const int64_t c = x.dim(1);
    // Per channel: [C]. Per activation (spatial=0): X's shape without N.
    const Shape want = spatial_ ? Shape{c} : Shape(x.shape().begin() + 1, x.shape().end());
    static const char* names[] = {"", "scale", "B", "mean", "var"};
    for (int i = 1; i <= 4; ++i) {
      const Tensor& p = ctx.input(i);
      if (p.dtype() != DType::Float32 && p.dtype() != DType::Float64)
        fail(ErrorCode::NotImplemented, names[i], " has element type ", dtype_name(p.dtype()), " (float or double expected)");
      if (p.shape() != want && !(spatial_ && p.size() == c && p.rank() <= 1))
        fail(ErrorCode::InvalidArgument, names[i], " must be ", shape_str(want), " for X ", shape_str(x.shape()), ", got ",
             shape_str(p.shape()));
    }
    coeffs_ = shape_size(want);
    inner_ = coeffs_ > 0 ? x.size() / std::max<int64_t>(x.dim(0), 1) / coeffs_ : 0;
    ctx.set_output(0, x.dtype(), x.shape());
  }

  void compute(OpContext& ctx) override {
    const Tensor& x = ctx.input(0);
    Tensor& y = ctx.output(0);
    if (y.size() == 0) return;
    // a = scale / sqrt(var + eps), b = B - mean * a, computed in double.
    std::vector<double> p[4];
    for (int i = 0; i < 4; ++i) {
      const Tensor& t = ctx.input(i + 1);
      p[i].resize(size_t(coeffs_));
      dispatch(FloatTypes{}, t.dtype(), "BatchNormalization", [&]<typename P>() {
        const P* v = t.data<P>();
        for (int64_t j = 0; j < coeffs_; ++j) p[i][size_t(j)] = double(v[j]);
      });
    }
    dispatch(FloatTypes{}, x.dtype(), "BatchNormalization", [&]<typename T>() {
      std::vector<T> a(static_cast<size_t>(coeffs_)), b(static_cast<size_t>(coeffs_));
      for (size_t j = 0; j < size_t(coeffs_); ++j) {
        const double s = p[0][j] / std::sqrt(p[3][j] + double(epsilon_));
        a[j] = T(s);
        b[j] = T(p[1][j] - p[2][j] * s);
      }
      const T* px = x.data<T>();
      T* py = y.data<T>();
      const int64_t rows = x.dim(0) * coeffs_, inner = inner_;
      parallel_for(rows, std::max<int64_t>(1, 16384 / std::max<int64_t>(inner, 1)), [&](int64_t begin, int64_t end) {
        for (int64_t r = begin; r < end; ++r) {
          const T ar = a[size_t(r % coeffs_)], br = b[size_t(r % coeffs_)];
          const T* xr = px + r * inner;
          T* yr = py + r * inner;
#pragma omp simd
          for (int64_t i = 0; i < inner; ++i) yr[i] = xr[i] * ar + br;
        }
      });
    });
  }

 private:
  float epsilon_;
  bool spatial_;
  int64_t coeffs_ = 0, inner_ = 0;
};

const OpRegistration kBatchNormalization{"BatchNormalization", make_kernel<BatchNormalization>};

}  // namespace
}  // namespace kiln
